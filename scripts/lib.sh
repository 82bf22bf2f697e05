# lib.sh - shared helpers for scripts/*; source it, do not run it.
# Sets ROOT (the checkout) and RUN_DIR (state of services started from it).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR="$ROOT/.run"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
note() { echo "==> $*"; }

# Newest PostgreSQL server binaries installed by Debian.
pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/initdb" ] || die "PostgreSQL server not installed (run scripts/install-deps)"
  echo "$d"
}

# Run a command as the postgres user when we are root (Postgres refuses root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# First free TCP port on 127.0.0.1 at or above $1.
free_port() {
  local p=$1
  while (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

# Build directory for this configuration: sanitizers get their own;
# SHIPTRACK_BUILD_DIR overrides.
build_dir() {
  if [ -n "${SHIPTRACK_BUILD_DIR:-}" ]; then
    echo "$SHIPTRACK_BUILD_DIR"
  elif [ "${SHIPTRACK_SANITIZE:-}" = 1 ] || [ "${CI:-}" = true ]; then
    echo "$ROOT/build-asan"
  else
    echo "$ROOT/build"
  fi
}
