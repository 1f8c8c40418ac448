# Shared by the scripts in scripts/: package installation and a private PostgreSQL cluster.
# Source it; it defines functions only.

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages Tessera needs to build and to run its database, if any is missing.
ensure_packages() {
  command -v swift >/dev/null 2>&1 || die "the Swift 6 toolchain is not on PATH (https://www.swift.org/install/linux/)"
  local missing=()
  for package in libsodium-dev pkg-config postgresql "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The newest installed PostgreSQL server's bin directory.
pg_bin_dir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] || die "no PostgreSQL server under /usr/lib/postgresql"
  echo "$dir"
}

# Runs a PostgreSQL server program as the owner of the cluster: initdb refuses root, so root runs it as `postgres`.
as_pg_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# init_cluster DIR SUPERUSER PASSWORD_FILE: creates a cluster in DIR whose superuser has the password in the file.
init_cluster() {
  local dir=$1 superuser=$2 password_file=$3
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$dir" "$password_file"
    runuser -u postgres -- test -r "$password_file" ||
      die "the postgres user cannot reach $dir; put the checkout where other users can traverse its parent folders"
  fi
  chmod 700 "$dir"
  as_pg_owner "$(pg_bin_dir)/initdb" -D "$dir" -U "$superuser" --pwfile="$password_file" \
    --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
}

# start_cluster DIR PORT: starts the cluster on 127.0.0.1:PORT only, with its socket inside DIR.
start_cluster() {
  local dir=$1 port=$2
  as_pg_owner "$(pg_bin_dir)/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir'" start >/dev/null ||
    { cat "$dir/server.log" >&2; die "PostgreSQL did not start"; }
}

# cluster_running DIR: whether the cluster in DIR is running.
cluster_running() {
  as_pg_owner "$(pg_bin_dir)/pg_ctl" -D "$1" status >/dev/null 2>&1
}

# stop_cluster DIR: stops the cluster if it runs.
stop_cluster() {
  local dir=$1
  [ -f "$dir/postmaster.pid" ] || return 0
  as_pg_owner "$(pg_bin_dir)/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
}

# random_hex BYTES: that many random bytes from the kernel, in hexadecimal.
random_hex() {
  od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}
