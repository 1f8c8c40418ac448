# A throwaway PostgreSQL cluster for test and fault scripts. Source after common.sh; call start_throwaway_cluster.
# Sets CLUSTER_DIR, PG_PORT and TEST_DATABASE_URL (superuser `tessera`, database `postgres`), and removes the
# cluster on exit.

start_throwaway_cluster() {
  CLUSTER_DIR=$(mktemp -d /tmp/tessera-pg.XXXXXX)
  local password password_file
  password=$(random_hex 16)
  password_file="$CLUSTER_DIR.pw"
  trap 'stop_cluster "$CLUSTER_DIR/data"; rm -rf "$CLUSTER_DIR" "$CLUSTER_DIR.pw"' EXIT
  printf '%s\n' "$password" >"$password_file"
  mkdir -p "$CLUSTER_DIR/data"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$CLUSTER_DIR"; fi
  init_cluster "$CLUSTER_DIR/data" tessera "$password_file"
  rm -f "$password_file"
  PG_PORT=$(free_port)
  start_cluster "$CLUSTER_DIR/data" "$PG_PORT"
  TEST_DATABASE_URL="postgresql://tessera:$password@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
  log "PostgreSQL $(basename "$(dirname "$(pg_bin_dir)")") on 127.0.0.1:$PG_PORT"
}
