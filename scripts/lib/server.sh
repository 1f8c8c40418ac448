# Starts a Tessera server for the fault and shutdown scripts. Source after common.sh and cluster.sh.

# start_tessera: builds (debug), migrates the throwaway cluster's database and serves on a free port in the
# background. Sets TESSERA_PID, TESSERA_PORT and API_KEY; extra environment may be exported beforehand.
start_tessera() {
  log "building tessera (debug)"
  swift build --product tessera >/dev/null
  local binary
  binary="$(swift build --show-bin-path)/tessera"
  export DATABASE_URL="$TEST_DATABASE_URL" MIGRATIONS_DIR="$PWD/migrations"
  export TOKEN_HASH_KEY="$(random_hex 32)" API_KEY="tsk_$(random_hex 24)"
  export RATE_LIMIT_ADMIN="${RATE_LIMIT_ADMIN:-1000000/60s}" RATE_LIMIT_VERIFY="${RATE_LIMIT_VERIFY:-1000000/60s}"
  TESSERA_PORT=$(free_port)
  PORT=$TESSERA_PORT "$binary" migrate >/dev/null
  PORT=$TESSERA_PORT LOG_LEVEL="${LOG_LEVEL:-warning}" "$binary" serve >"$CLUSTER_DIR/tessera.log" 2>&1 &
  TESSERA_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$TESSERA_PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  cat "$CLUSTER_DIR/tessera.log" >&2
  die "tessera did not start"
}
