# bench/lib.sh - shared helpers of the bench/ scripts; source it, do not run it.
#
# Sets ROOT, BIN (the RelWithDebInfo build: SHIPTRACK_BUILD_DIR, or build/ via
# scripts/build), WORK (a temporary directory removed on exit) and SMOKE (1
# under --smoke: tiny sizes, only checks that the script still runs). Every
# process a script starts through bench_bg is stopped on exit, and so is its
# PostgreSQL cluster ("bench", started by bench_pg). BENCH_KEEP=1 keeps WORK
# (logs of the worker, simulator and sink) for a look afterwards.
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SMOKE=0
RUNS=${BENCH_RUNS:-${BENCH_DEFAULT_RUNS:-3}}
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1; RUNS=1 ;;
    --runs=*) RUNS=${arg#--runs=} ;;
    -h|--help) sed -n '2,/^set -/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
    *) die "unknown argument \"$arg\" (known: --smoke, --runs=N)" ;;
  esac
done
case "$RUNS" in ''|*[!0-9]*|0) die "--runs: \"$RUNS\" is not a positive number" ;; esac

"$ROOT/scripts/install-deps" --bench >/dev/null
if [ -n "${SHIPTRACK_BUILD_DIR:-}" ]; then
  BIN=$SHIPTRACK_BUILD_DIR
else
  BIN=$(SHIPTRACK_SANITIZE=0 CI= CMAKE_BUILD_TYPE=RelWithDebInfo "$ROOT/scripts/build" 2>/dev/null) \
    || die "build failed (run scripts/build)"
fi
for b in shiptrack shiptrack-carrier-sim shiptrack-bench-ingest; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing (build with CMake first)"
done
grep -qs '^CMAKE_BUILD_TYPE:STRING=RelWithDebInfo$' "$BIN/CMakeCache.txt" \
  || die "$BIN is not a RelWithDebInfo build: never measure a Debug build"
grep -qs '^SHIPTRACK_SANITIZE:BOOL=ON$' "$BIN/CMakeCache.txt" \
  && die "$BIN is a sanitizer build: never measure it"

WORK=$(mktemp -d /tmp/shiptrack-bench.XXXXXX)
BENCH_PIDS=()
PG_ADMIN=
bench_cleanup() {
  local i
  for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${BENCH_PIDS[$i]}" 2>/dev/null && { wait "${BENCH_PIDS[$i]}" 2>/dev/null || true; }
  done
  [ -n "$PG_ADMIN" ] && "$ROOT/scripts/pg-stop" bench >/dev/null 2>&1
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap 'bench_cleanup' EXIT
trap 'exit 130' INT TERM

# Start "$@" in the background, remember it for the cleanup; its pid in BG_PID.
bench_bg() {
  "$@" &
  BG_PID=$!
  BENCH_PIDS+=("$BG_PID")
}

# Stop a process started with bench_bg (SIGTERM, then wait for it).
bench_stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Start the throwaway cluster; bench_db NAME then makes a migrated database
# and sets SHIPTRACK_DATABASE_URL to it.
bench_pg() {
  PG_ADMIN=$("$ROOT/scripts/pg-start" bench) || die "could not start PostgreSQL"
}
bench_db() {
  PGOPTIONS='-c client_min_messages=warning' psql -qX "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
  export SHIPTRACK_DATABASE_URL="${PG_ADMIN%/*}/$1"
  SHIPTRACK_LOG_LEVEL=warn "$BIN/shiptrack" migrate >/dev/null || die "migrate failed"
}
q() { psql -X -q -At "$SHIPTRACK_DATABASE_URL" -c "$1"; }

# Start the carrier simulator with the arguments given; its URL in SIM_URL.
bench_sim() {
  bench_bg "$BIN/shiptrack-carrier-sim" --port 0 "$@" >"$WORK/sim.out" 2>"$WORK/sim.log"
  SIM_PID=$BG_PID
  SIM_URL=
  for _ in $(seq 100); do
    SIM_URL=$(sed -n 's/^shiptrack-carrier-sim listening on //p' "$WORK/sim.out")
    [ -n "$SIM_URL" ] && return 0
    sleep 0.05
  done
  cat "$WORK/sim.log" >&2
  die "simulator did not start"
}

# Seconds since the epoch, with fractions.
now() { date +%s.%N; }

# Median and spread (min-max) of the numbers on stdin: "MEDIAN MIN MAX".
stats() { sort -g | awk '{v[NR] = $1} END {
  m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "%.0f %.0f %.0f\n", m, v[1], v[NR] }'; }

# row NAME OURS REFERENCE RATIO TARGET VERDICT: print one table row (markdown),
# with the header, and append it to $BENCH_RESULTS when set.
row() {
  local verdict=$6
  [ "$SMOKE" = 1 ] && verdict="smoke (not a measurement)"
  local line="| $1 | $2 | $3 | $4 | $5 | $verdict |"
  printf '\n| benchmark | ours (median, min-max of %s) | reference | ratio | target | verdict |\n' "$RUNS"
  printf '|---|---|---|---|---|---|\n%s\n' "$line"
  [ -n "${BENCH_RESULTS:-}" ] && echo "$line" >>"$BENCH_RESULTS"
  return 0
}

# result NAME UNIT OURS_LIST REF_LIST TARGET_RATIO [ABS_TARGET]: print the
# benchmark's table row (markdown) with the medians, the spread of the runs,
# the ratio of the medians and PASS/MISS against the target ratio (and the
# absolute target, when given). Also appended to $BENCH_RESULTS when set.
result() {
  local name=$1 unit=$2 o omin omax r rmin rmax ratio verdict=PASS
  read -r o omin omax < <(tr ' ' '\n' <<<"$3" | grep . | stats)
  read -r r rmin rmax < <(tr ' ' '\n' <<<"$4" | grep . | stats)
  ratio=$(awk -v a="$o" -v b="$r" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  awk -v x="$ratio" -v t="$5" 'BEGIN { exit !(x >= t) }' || verdict=MISS
  if [ -n "${6:-}" ] && ! awk -v a="$o" -v t="$6" 'BEGIN { exit !(a >= t) }'; then
    verdict=MISS
  fi
  row "$name" "$o $unit ($omin-$omax)" "$r $unit ($rmin-$rmax)" "$ratio" \
    ">= $5${6:+, >= $6 $unit}" "$verdict"
}

# Point the poller at the simulator's DHL API with no rate limit or quota,
# CONC requests in flight: bench_poller_env KEY CONC.
bench_poller_env() {
  export SHIPTRACK_DHL_BASE_URL=$SIM_URL SHIPTRACK_DHL_API_KEY=$1 SHIPTRACK_DHL_RATE=100000/s \
    SHIPTRACK_DHL_DAILY_QUOTA=0 SHIPTRACK_DHL_CONCURRENCY=$2 SHIPTRACK_POLL_CONCURRENCY=$2 \
    SHIPTRACK_POLL_INTERVAL=1d SHIPTRACK_POLL_JITTER=0 SHIPTRACK_LOG_LEVEL=warn \
    SHIPTRACK_EXPIRE_AFTER=365d
}

# Polls of the last pass, from the database: "POLLS SECONDS FAILED" (first
# to last poll of the shipments polled in the last ten minutes).
bench_polls() {
  q "SELECT count(*), extract(epoch FROM max(last_poll_at) - min(last_poll_at)),
            count(*) FILTER (WHERE last_poll_error IS NOT NULL)
       FROM shipments WHERE last_poll_at > now() - interval '10 minutes'" | tr '|' ' '
}
