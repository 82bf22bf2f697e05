#!/usr/bin/env bash
# run.sh - the browser test: seed a database with the demo shipment held at
# customs (tests/fixtures/api/seed.sql), serve it with `shiptrack run --roles
# api` on a free loopback port, and open the pages in headless Chromium
# (agent_page.mjs). Screenshots go to ARTIFACT_DIR.
#
# usage: run.sh SHIPTRACK_BINARY ARTIFACT_DIR   (needs SHIPTRACK_TEST_PG_URL)
set -euo pipefail
bin=$1 artifacts=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${SHIPTRACK_TEST_PG_URL:?set SHIPTRACK_TEST_PG_URL (scripts/test does)}"
command -v "${CHROMIUM:-/usr/bin/chromium}" >/dev/null ||
  { echo "run.sh: no chromium (scripts/install-deps installs it)" >&2; exit 1; }
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && npm ci --no-audit --no-fund >/dev/null)
fi

db="st_browser_$$"
work=$(mktemp -d /tmp/st-browser.XXXXXX)
api_pid=
cleanup() {
  [ -n "$api_pid" ] && kill -TERM "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null || true
  psql -X -q "$SHIPTRACK_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

psql -X -q "$SHIPTRACK_TEST_PG_URL" -c "CREATE DATABASE $db" >/dev/null
export SHIPTRACK_DATABASE_URL="${SHIPTRACK_TEST_PG_URL%/*}/$db"
"$bin" migrate >/dev/null
psql -X -q -v ON_ERROR_STOP=1 "$SHIPTRACK_DATABASE_URL" -f "$root/tests/fixtures/api/seed.sql" >/dev/null

token="admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
SHIPTRACK_API_LISTEN=127.0.0.1:0 SHIPTRACK_API_TOKENS="admin:$token" \
  SHIPTRACK_API_COOKIE_SECURE=off SHIPTRACK_LOG_LEVEL=info \
  "$bin" run --roles api 2>"$work/api.log" &
api_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*api.start.*(port \([0-9]*\)).*/\1/p' "$work/api.log")
  [ -n "$port" ] && break
  kill -0 "$api_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/api.log" >&2; echo "run.sh: the api did not start" >&2; exit 1; }

node "$here/agent_page.mjs" "http://127.0.0.1:$port" "$token" 3318810025 "$artifacts"
