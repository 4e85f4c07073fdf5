#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - the benchmark table of `make bench`.
#
# Measures, in one run on this machine, the ceilings (nginx serving a static
# file; LMDB's raw batched put rates) and Bespoke's figures (batch ingest,
# small track calls, bulk import, profile reads), and prints one table with
# each figure beside its ceiling and the ratio. docs/performance.md explains
# every row.
#
# Everything listens on 127.0.0.1 only. Every process started here is stopped
# by its PID on exit, and the temporary directory is removed.
#
# Knobs (environment): BENCH_SECONDS (10) length of each timed wrk run;
# BENCH_EVENTS (1000000) simulated events sent through /v1/batch;
# BENCH_STALL_SECONDS (10) no progress this long during ingest is a stall.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD_ARG=${1:-build}
if [ -d "$BUILD_ARG" ]; then
  BUILD=$(cd "$BUILD_ARG" && pwd)
else
  BUILD=$ROOT/$BUILD_ARG
fi
DATA=$ROOT/../shared/data
BESPOKE=$BUILD/bespoke
SECONDS_RUN=${BENCH_SECONDS:-10}
EVENTS=${BENCH_EVENTS:-1000000}
STALL_S=${BENCH_STALL_SECONDS:-10}
PER_BATCH=100
CORES=$(nproc)
WRK_T=$CORES
[ "$WRK_T" -gt 8 ] && WRK_T=8
SERVER_THREADS=2

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bespoke-bench.XXXXXX")
chmod 755 "$TMP" # nginx workers may run as another user
PIDS=()

log() { printf 'bench: %s\n' "$*" >&2; }

STOP_RC=""
stop_pid() { # PID SECONDS: SIGTERM, then SIGKILL after SECONDS; sets STOP_RC
  local pid=$1 limit=${2:-10} i
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null
    STOP_RC=$?
    return
  fi
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    STOP_RC="killed after ${limit} s"
    return
  fi
  wait "$pid" 2>/dev/null
  STOP_RC=$?
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null && stop_pid "$pid" 5
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # URL SECONDS PID: true once URL answers (any status)
  local url=$1 limit=$2 pid=$3 i
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 1
    curl -s -o /dev/null --max-time 1 "$url" && return 0
    sleep 0.1
  done
  return 1
}

# --- the table ------------------------------------------------------------------
T_FIG=() T_VAL=() T_CEIL=() T_RATIO=()
NOTES=()
row() { T_FIG+=("$1"); T_VAL+=("$2"); T_CEIL+=("${3:-}"); T_RATIO+=("${4:-}"); }
note() { NOTES+=("$*"); log "$*"; }

# 1234567.8 -> 1,234,568
num() { LC_ALL=C awk -v x="$1" 'BEGIN { if (x == "" || x !~ /^-?[0-9.]+$/) { print "?"; exit }
  s = sprintf("%.0f", x); n = ""; neg = (substr(s,1,1) == "-"); if (neg) s = substr(s,2)
  while (length(s) > 3) { n = "," substr(s, length(s)-2) n; s = substr(s, 1, length(s)-3) }
  print (neg ? "-" : "") s n }'; }
ratio() { LC_ALL=C awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) { r = a / b; printf (r < 0.1 ? "%.3f" : "%.2f"), r } else print "-" }'; }
fmt_ms() { LC_ALL=C awk -v x="$1" 'BEGIN { if (x == "") print "?"; else if (x < 1) printf "%.0f us", x * 1000; else printf "%.2f ms", x }'; }

print_table() {
  local i w1=6 w2=5 w3=7
  for i in "${!T_FIG[@]}"; do
    ((${#T_FIG[i]} > w1)) && w1=${#T_FIG[i]}
    ((${#T_VAL[i]} > w2)) && w2=${#T_VAL[i]}
    ((${#T_CEIL[i]} > w3)) && w3=${#T_CEIL[i]}
  done
  local sep
  sep=$(printf '%*s' $((w1 + w2 + w3 + 17)) '' | tr ' ' '-')
  printf '%-*s | %*s | %*s | %s\n' "$w1" figure "$w2" value "$w3" ceiling ratio
  echo "$sep"
  for i in "${!T_FIG[@]}"; do
    printf '%-*s | %*s | %*s | %s\n' "$w1" "${T_FIG[i]}" "$w2" "${T_VAL[i]}" "$w3" "${T_CEIL[i]}" "${T_RATIO[i]}"
  done
}

# --- wrk output -----------------------------------------------------------------
wrk_rps() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }
wrk_non2xx() { awk '/Non-2xx or 3xx responses:/ { print $NF; f = 1 } END { if (!f) print 0 }' "$1"; }
wrk_requests() { awk '/requests in/ { print $1 }' "$1"; }
wrk_sockerr() { # "connect 0, read 0, write 0, timeout 0" or empty
  sed -n 's/^ *Socket errors: //p' "$1"; }
wrk_pct() { # FILE PCT -> milliseconds
  awk -v p="$2%" '$1 == p { v = $2; u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u)
    if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000
    print v; exit }' "$1"; }

# --- the machine ----------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
[ -n "$CPU" ] || CPU=$(lscpu 2>/dev/null | awk -F': *' '/Model name/ { print $2; exit }')
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
if ! git -C "$ROOT" diff --quiet HEAD 2>/dev/null; then COMMIT="$COMMIT+changes"; fi
START_TS=$(date +%s)

need() { command -v "$1" >/dev/null 2>&1; }
for t in wrk nginx curl python3 cc; do
  need "$t" || { echo "bench: '$t' is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
done

# ================================================================================
# 1. Ceiling: nginx serving a 300-byte static file.
# ================================================================================
NGX_RPS="" NGX16_RPS="" NGX_P50="" NGX_P99="" NGX_URL="" NGX_PID=""
bench_nginx() {
  local ngx=$TMP/nginx port pid
  mkdir -p "$ngx/www" "$ngx/logs" "$ngx/tmp"
  head -c 300 /dev/zero | tr '\0' 'x' >"$ngx/www/static.txt"
  port=$(free_port)
  local user_line=""
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  cat >"$ngx/nginx.conf" <<EOF
$user_line
worker_processes 2;
daemon off;
pid $ngx/nginx.pid;
error_log $ngx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $ngx/tmp;
  default_type text/plain;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    root $ngx/www;
  }
}
EOF
  nginx -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/logs/error.log" >"$ngx/logs/stdout.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  if ! wait_http "http://127.0.0.1:$port/static.txt" 10 "$pid"; then
    note "nginx did not start: $(tail -n 3 "$ngx/logs/error.log" "$ngx/logs/stdout.log" 2>/dev/null | tr '\n' ' ')"
    return
  fi
  local url="http://127.0.0.1:$port/static.txt"
  log "nginx: wrk -t$WRK_T -c64 -d${SECONDS_RUN}s"
  wrk -t"$WRK_T" -c64 -d"${SECONDS_RUN}s" "$url" >"$TMP/wrk-nginx.txt" 2>&1
  NGX_RPS=$(wrk_rps "$TMP/wrk-nginx.txt")
  log "nginx: wrk -t$WRK_T -c16 -d${SECONDS_RUN}s --latency"
  wrk -t"$WRK_T" -c16 -d"${SECONDS_RUN}s" --latency "$url" >"$TMP/wrk-nginx16.txt" 2>&1
  NGX16_RPS=$(wrk_rps "$TMP/wrk-nginx16.txt")
  NGX_P50=$(wrk_pct "$TMP/wrk-nginx16.txt" 50)
  NGX_P99=$(wrk_pct "$TMP/wrk-nginx16.txt" 99)
  # nginx stays up (idle) for the runs beside each of Bespoke's HTTP rows.
  NGX_URL=$url
  NGX_PID=$pid
  local n2
  n2=$(wrk_non2xx "$TMP/wrk-nginx.txt")
  [ "$n2" != 0 ] && note "nginx answered $n2 non-2xx responses"
  row "ceiling: nginx 300 B file, c64 (req/s)" "$(num "$NGX_RPS")"
  row "ceiling: nginx 300 B file, c16 (req/s)" "$(num "$NGX16_RPS")"
  row "ceiling: nginx 300 B file, c16 p50 / p99" "$(fmt_ms "$NGX_P50") / $(fmt_ms "$NGX_P99")"
}

# The machine's speed drifts by 20% and more within minutes (nginx alone read
# 150k, 202k and 177k in three runs in a row), so each HTTP row of Bespoke is
# set beside nginx measured again right after it, with the same connections
# and duration; the nginx rows at the top are the first of those runs.
nginx_beside() { # CONNECTIONS -> nginx req/s now, or the start's figure
  local conns=$1 fallback=$NGX16_RPS
  [ "$conns" = 64 ] && fallback=$NGX_RPS
  if [ -z "$NGX_URL" ] || ! kill -0 "$NGX_PID" 2>/dev/null; then
    echo "$fallback"
    return
  fi
  wrk -t"$WRK_T" -c"$conns" -d"${SECONDS_RUN}s" "$NGX_URL" >"$TMP/wrk-nginx-beside.txt" 2>&1
  local rps
  rps=$(wrk_rps "$TMP/wrk-nginx-beside.txt")
  echo "${rps:-$fallback}"
}
rate_row() { # LABEL RPS CONNECTIONS: the row, beside nginx measured right after
  local ngx
  ngx=$(nginx_beside "$3")
  row "$1" "$(num "$2")" "$(num "$ngx") nginx c$3 after" "$(ratio "$2" "$ngx")"
}

# ================================================================================
# 2. Ceiling: LMDB raw batched puts (bench/lmdb_ceiling.c).
# ================================================================================
LMDB_APPEND="" LMDB_RANDOM=""
bench_lmdb() {
  local bin=$BUILD/bench/lmdb_ceiling src=$HERE/lmdb_ceiling.c
  mkdir -p "$BUILD/bench"
  if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
    if ! ${CC:-cc} -O2 -std=c17 -D_GNU_SOURCE -Wall -o "$bin" "$src" -llmdb 2>"$TMP/lmdb-cc.txt"; then
      note "lmdb_ceiling did not compile: $(head -n 3 "$TMP/lmdb-cc.txt" | tr '\n' ' ')"
      return
    fi
  fi
  log "lmdb_ceiling 1000000 10"
  mkdir -p "$TMP/lmdb"
  if ! TMPDIR=$TMP/lmdb "$bin" 1000000 10 >"$TMP/lmdb.txt" 2>"$TMP/lmdb-err.txt"; then
    note "lmdb_ceiling failed: $(tr '\n' ' ' <"$TMP/lmdb-err.txt")"
  fi
  LMDB_APPEND=$(awk '$1 == "lmdb_append_puts_per_s" { print $2 }' "$TMP/lmdb.txt")
  LMDB_RANDOM=$(awk '$1 == "lmdb_random_puts_per_s" { print $2 }' "$TMP/lmdb.txt")
  row "ceiling: LMDB append puts, 1000/txn (puts/s)" "$(num "$LMDB_APPEND")"
  row "ceiling: LMDB random puts, 1000/txn (puts/s)" "$(num "$LMDB_RANDOM")"
}

# ================================================================================
# The server.
# ================================================================================
WRITE_KEY=bench-write-key-0123456789
ADMIN_KEY=bench-admin-key-0123456789
WRITE_AUTH="Basic $(printf '%s:' "$WRITE_KEY" | base64 | tr -d '\n')"
ADMIN_AUTH="Bearer $ADMIN_KEY"
SRV_PID="" SRV_PORT="" SRV_LOG=""
start_server() { # DATA_DIR NAME
  SRV_PORT=$(free_port)
  SRV_LOG=$TMP/server-$2.log
  env ${BENCH_SERVER_ENV:-} "$BESPOKE" serve --listen "127.0.0.1:$SRV_PORT" --data "$1" --write-key "$WRITE_KEY" \
    --admin-key "$ADMIN_KEY" --threads "$SERVER_THREADS" --log-level warn \
    --rfm-interval 0 --predict-interval 0 --train-interval 0 >"$SRV_LOG" 2>&1 &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  if ! wait_http "http://127.0.0.1:$SRV_PORT/healthz" 15 "$SRV_PID"; then
    note "server ($2) did not start: $(tail -n 3 "$SRV_LOG" | tr '\n' ' ')"
    SRV_PID=""
    return 1
  fi
}
stop_server() { # NAME
  [ -n "$SRV_PID" ] || return
  stop_pid "$SRV_PID" 30
  if [ "$STOP_RC" != 0 ]; then
    note "server ($1) exit on SIGTERM: $STOP_RC; log tail: $(tail -n 3 "$SRV_LOG" | tr '\n' ' ')"
  fi
  local n
  n=$(grep -c . "$SRV_LOG")
  if [ "$n" -gt 0 ]; then
    note "server ($1) logged $n lines at warn or worse, first: $(grep -m1 . "$SRV_LOG")"
  fi
  SRV_PID=""
}
server_alive() { [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; }
stored_events() { # the events count of GET /v1/admin/stats, or empty
  curl -s --max-time 5 -H "Authorization: $ADMIN_AUTH" "http://127.0.0.1:$SRV_PORT/v1/admin/stats" |
    python3 -c '
import json, sys
def find(o):
    if isinstance(o, dict):
        if isinstance(o.get("events"), int): return o["events"]
        for v in o.values():
            r = find(v)
            if r is not None: return r
    return None
try: r = find(json.load(sys.stdin))
except ValueError: r = None
print("" if r is None else r)' 2>/dev/null
}
metrics_snap() { # -> "commits events latency_sum latency_count checkpoint_seconds wal_syncs" from /metrics
  curl -s --max-time 5 "http://127.0.0.1:$SRV_PORT/metrics" | awk '
    $1 == "bespoke_ingest_commits_total" { c = $2 }
    $1 == "bespoke_events_ingested_total" { e = $2 }
    $1 == "bespoke_commit_latency_seconds_sum" { ls = $2 }
    $1 == "bespoke_commit_latency_seconds_count" { lc = $2 }
    $1 == "bespoke_ingest_checkpoint_seconds_total" { ck = $2 }
    $1 == "bespoke_ingest_wal_syncs_total" { sy = $2 }
    END { print c + 0, e + 0, ls + 0, lc + 0, ck + 0, sy + 0 }'
}
segment_snap() { # -> "evaluations seconds segments" from /metrics
  curl -s --max-time 5 "http://127.0.0.1:$SRV_PORT/metrics" | awk '
    $1 == "bespoke_segment_evaluations_total" { e = $2 }
    $1 == "bespoke_segment_evaluation_seconds_total" { s = $2 }
    $1 == "bespoke_segments" { n = $2 }
    END { print e + 0, s + 0, n + 0 }'
}

segment_row() { # BEFORE AFTER EVENTS: segment upkeep per ingested event
  read -r e0 s0 _ <<<"$1"
  read -r e1 s1 n <<<"$2"
  local per_event per_eval
  per_event=$(awk -v a="$s0" -v b="$s1" -v ev="$3" 'BEGIN { if (ev > 0) printf "%.2f", (b - a) / ev * 1e6 }')
  per_eval=$(awk -v a="$s0" -v b="$s1" -v x="$e0" -v y="$e1" 'BEGIN { if (y > x) printf "%.2f", (b - a) / (y - x) * 1e6 }')
  row "ingest: segment upkeep, $n segments (us/event)" "${per_event:-?} us" "$(num "$((e1 - e0))") evaluations, ${per_eval:-?} us each"
}

commit_row() { # LABEL "BEFORE" "AFTER" SECONDS: events a commit, commits/s, mean commit time
  local label=$1
  read -r c0 e0 s0 n0 k0 y0 <<<"$2"
  read -r c1 e1 s1 n1 k1 y1 <<<"$3"
  local v
  v=$(LC_ALL=C awk -v c="$((c1 - c0))" -v e="$((e1 - e0))" -v s="$(awk -v a="$s1" -v b="$s0" 'BEGIN { print a - b }')" \
    -v n="$((n1 - n0))" -v t="$4" 'BEGIN { if (c <= 0) { print "no commits"; exit }
      printf "%.0f events/commit, %.0f commits/s, %.2f ms mean", e / c, (t > 0 ? c / t : 0), (n > 0 ? s / n * 1000 : 0) }')
  row "$label: group commit" "$v"
  v=$(LC_ALL=C awk -v a="${k1:-0}" -v b="${k0:-0}" -v t="$4" 'BEGIN { if (t > 0) printf "%.1f%% of the run", (a - b) / t * 100 }')
  [ -n "$v" ] && row "$label: writer in checkpoints" "$v"
  v=$(LC_ALL=C awk -v a="${y1:-0}" -v b="${y0:-0}" -v t="$4" 'BEGIN { if (t > 0 && a > b) printf "%.0f a second", (a - b) / t }')
  [ -n "$v" ] && row "$label: syncs of the write-ahead file" "$v"
}
server_diagnostics() { # FILE: thread states and stacks of the server, for a stall
  {
    echo "== $(date -u +%FT%TZ) server pid $SRV_PID"
    for t in /proc/"$SRV_PID"/task/*; do
      echo "$(cat "$t/comm" 2>/dev/null) $(awk '{ print $3 }' "$t/stat" 2>/dev/null) wchan=$(cat "$t/wchan" 2>/dev/null)"
    done
    echo "== sockets"
    ss -tnp 2>/dev/null | grep -c ":$SRV_PORT" || true
    ss -tn state established "( sport = :$SRV_PORT )" 2>/dev/null | awk 'NR > 1 { r += $1; s += $2 } END { print "recv-q", r, "send-q", s }'
    echo "== /metrics"
    curl -s --max-time 2 "http://127.0.0.1:$SRV_PORT/metrics" | grep -v '^#' | head -n 60
    if command -v gdb >/dev/null 2>&1; then
      echo "== stacks"
      timeout 30 gdb -p "$SRV_PID" -batch -ex 'thread apply all bt' 2>&1 | grep -E '^(Thread|#)' | head -n 400
    fi
    echo "== server log tail"
    tail -n 30 "$SRV_LOG"
  } >"$1" 2>&1
}

# ================================================================================
# 3. Ingest: 1M simulated events through POST /v1/batch, 100 a body.
# ================================================================================
# batch_send BODIES NBODIES OUT NAME: sends every body once through POST
# /v1/batch with wrk (bench/batch.lua) to the running server, its summary
# into OUT. Sets BATCH_WALL0/BATCH_WALL1 (wall clock around the run) and
# BATCH_STALLED (why it stopped early, or empty).
batch_send() {
  local bodies=$1 nbodies=$2 out=$3 prog=$TMP/progress-$4
  rm -rf "$prog"
  mkdir -p "$prog"
  BATCH_WALL0=$(date +%s.%N)
  wrk -t"$WRK_T" -c64 -d600s --timeout 60s -s "$HERE/batch.lua" \
    "http://127.0.0.1:$SRV_PORT/v1/batch" -- "$bodies" "$prog" "$WRK_T" "$WRITE_AUTH" \
    >"$out" 2>&1 &
  local wpid=$!
  PIDS+=("$wpid")
  # Watch: all threads done -> interrupt wrk (it otherwise sleeps its full
  # duration); no progress for STALL_S seconds -> a stall, reported.
  local last=-1 still=0 now_p ndone
  BATCH_STALLED=""
  while kill -0 "$wpid" 2>/dev/null; do
    sleep 1
    ndone=$(ls "$prog" 2>/dev/null | grep -c '^done\.')
    if [ "$ndone" -ge "$WRK_T" ]; then break; fi
    # (a file being rewritten may read empty: it then counts 0 this once)
    now_p=$(cat "$prog"/progress.* 2>/dev/null | awk '$1 ~ /^[0-9]+$/ { s += $1 } END { print s + 0 }')
    if [ "$(ls "$prog" | grep -c '^progress\.')" -lt "$WRK_T" ]; then continue; fi # still loading
    if [ "$now_p" -ne "$last" ]; then
      last=$now_p
      still=0
    else
      still=$((still + 1))
      if [ "$still" -ge "$STALL_S" ]; then
        BATCH_STALLED="no answer for ${STALL_S} s after $now_p of $nbodies bodies"
        break
      fi
    fi
    if ! server_alive; then
      BATCH_STALLED="server died after $now_p of $nbodies bodies"
      break
    fi
  done
  BATCH_WALL1=$(date +%s.%N)
  if [ -n "$BATCH_STALLED" ]; then
    mkdir -p "$BUILD/bench"
    local diag
    diag=$BUILD/bench/stall-$(date +%Y%m%d-%H%M%S).txt
    server_alive && server_diagnostics "$diag"
    note "STALL during ingest: $BATCH_STALLED; server threads/stacks in $diag"
  fi
  kill -INT "$wpid" 2>/dev/null
  wait "$wpid" 2>/dev/null
}

IDS_FILE=""
bench_ingest() {
  local sim=$TMP/sim.jsonl bodies=$TMP/bodies.txt t0 t1
  log "simulate --events $EVENTS --seed 42"
  t0=$(date +%s.%N)
  if ! "$BESPOKE" simulate --events "$EVENTS" --seed 42 --out "$sim" 2>"$TMP/sim-err.txt"; then
    note "bespoke simulate failed: $(head -n 3 "$TMP/sim-err.txt" | tr '\n' ' ')"
    return 1
  fi
  t1=$(date +%s.%N)
  log "simulate: $(wc -l <"$sim") lines, $(du -m "$sim" | cut -f1) MB in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
  if ! python3 "$HERE/pack_batches.py" --per-batch "$PER_BATCH" "$sim" "$bodies" "$TMP/ids.txt" >"$TMP/pack.txt"; then
    note "pack_batches.py failed"
    return 1
  fi
  IDS_FILE=$TMP/ids.txt
  local nbodies nevents
  nbodies=$(awk '{ print $2 }' "$TMP/pack.txt")
  nevents=$(awk '{ print $4 }' "$TMP/pack.txt")
  rm -f "$sim"
  log "packed: $(cat "$TMP/pack.txt")"

  start_server "$TMP/data-ingest" ingest || return 1
  # The 50 segments and 100 campaigns of the decision rows exist before the
  # events arrive, so ingest pays for keeping membership current (the
  # built-in segments make 57).
  DECIDE_READY=""
  if python3 "$HERE/decide_setup.py" "http://127.0.0.1:$SRV_PORT" "$ADMIN_AUTH" >"$TMP/decide-setup.txt" 2>&1; then
    DECIDE_READY=1
  else
    note "decide setup failed: $(tail -n 3 "$TMP/decide-setup.txt" | tr '\n' ' ')"
  fi
  local seg0
  seg0=$(segment_snap)
  sync # the LMDB ceiling's dirty pages would be written back inside this run
  log "ingest: wrk -t$WRK_T -c64, $nbodies bodies of $PER_BATCH events, each sent once"
  local m0 m1 stalled
  m0=$(metrics_snap)
  batch_send "$bodies" "$nbodies" "$TMP/wrk-batch.txt" ingest
  stalled=$BATCH_STALLED
  local ok answered sent elapsed non200 codes sockerr extra fillers
  ok=$(awk '$1 == "batch_ok" { print $2 }' "$TMP/wrk-batch.txt")
  answered=$(awk '$1 == "batch_answered" { print $2 }' "$TMP/wrk-batch.txt")
  sent=$(awk '$1 == "batch_sent" { print $2 }' "$TMP/wrk-batch.txt")
  elapsed=$(awk '$1 == "batch_elapsed_s" { print $2 }' "$TMP/wrk-batch.txt")
  extra=$(awk '$1 == "batch_extra_requests" { print $2 }' "$TMP/wrk-batch.txt")
  fillers=$(awk '$1 == "batch_fillers" { print $2 }' "$TMP/wrk-batch.txt")
  codes=$(awk '$1 == "batch_status" && $2 != 200 { printf "%s%s x%s", sep, $2, $3; sep = ", " }' "$TMP/wrk-batch.txt")
  sockerr=$(awk '$1 == "batch_socket_errors" { print $2 + $3 + $4 }' "$TMP/wrk-batch.txt")
  if [ -z "$ok" ]; then
    note "ingest: wrk printed no summary: $(tail -n 5 "$TMP/wrk-batch.txt" | tr '\n' ' ')"
    ok=0 answered=0 sent=0 elapsed=0
  fi
  [ -z "$stalled" ] || elapsed=$(awk -v a="$BATCH_WALL0" -v b="$BATCH_WALL1" 'BEGIN { print b - a }')
  non200=$((answered - ok))
  # Every body holds PER_BATCH events but the last; acknowledged events:
  local acked rejected
  rejected=$(awk '$1 == "batch_rejected_messages" { print $2 }' "$TMP/wrk-batch.txt")
  rejected=${rejected:-0}
  acked=$(awk -v ok="$ok" -v nb="$nbodies" -v ne="$nevents" -v pb="$PER_BATCH" -v rj="$rejected" \
    'BEGIN { a = ok * pb; if (ok == nb) a = ne; print a - rj }')
  local eps rps
  eps=$(awk -v a="$acked" -v e="$elapsed" 'BEGIN { if (e > 0) print a / e; else print 0 }')
  rps=$(awk -v a="$ok" -v e="$elapsed" 'BEGIN { if (e > 0) print a / e; else print 0 }')
  row "ingest POST /v1/batch x$PER_BATCH (events/s)" "$(num "$eps")" "$(num "$LMDB_RANDOM") LMDB random" "$(ratio "$eps" "$LMDB_RANDOM")"
  row "ingest POST /v1/batch x$PER_BATCH (requests/s)" "$(num "$rps")" "$(num "$NGX_RPS") nginx" "$(ratio "$rps" "$NGX_RPS")"
  row "ingest: bodies answered 200 / sent" "$(num "$ok") / $(num "$sent")" "$(num "$nbodies") bodies"
  row "ingest: non-200 answers" "$non200${codes:+ ($codes)}" "0"
  row "ingest: messages refused inside 200 answers" "$rejected" "0"
  [ "${sockerr:-0}" -gt 0 ] && note "ingest: wrk socket errors (connect+read+write): $sockerr"
  [ "${extra:-0}" -gt 0 ] && note "ingest: wrk re-asked for $extra requests after socket errors"
  [ "${fillers:-0}" -gt 0 ] && note "ingest: $fillers filler GETs were sent after the share (socket errors)"
  row "ingest: run time, batch latency p50 / p99" \
    "$(awk -v e="$elapsed" 'BEGIN { printf "%.1f s", e }'), $(fmt_ms "$(awk '$1 == "batch_latency_p50_ms" { print $2 }' "$TMP/wrk-batch.txt")") / $(fmt_ms "$(awk '$1 == "batch_latency_p99_ms" { print $2 }' "$TMP/wrk-batch.txt")")"
  m1=$(metrics_snap)
  commit_row ingest "$m0" "$m1" "$elapsed"
  segment_row "$seg0" "$(segment_snap)" "$acked"
  local stored
  stored=$(stored_events)
  row "ingest: events in GET /v1/admin/stats" "$(num "${stored:-?}")" "$(num "$nevents") sent"
  if [ "${stored:-x}" != "$nevents" ]; then
    note "ingest: the store holds ${stored:-?} events, $nevents were sent ($acked acknowledged)"
  fi
  INGEST_BODIES=$bodies INGEST_NBODIES=$nbodies INGEST_NEVENTS=$nevents # for 3b
  if [ -n "$stalled" ]; then
    row "ingest: STALL" "$stalled"
    return 1
  fi
  return 0
}

# ================================================================================
# 3b. What memory costs, and the ingest again on memory just in use.
#     On a virtual machine whose host takes back the memory its guest frees
#     (free page reporting), the first touch of such a page costs a fault in
#     the host: bench/touch_ceiling.c measures it. A fresh store's ingest
#     touches about 2 GB of new pages (page cache, LMDB's dirty pages), so
#     run 3 pays for whatever the ceilings before it freed. touch_ceiling
#     leaves 4 GB just in use; the same bodies then go to a fresh store at
#     once (the host takes pages back a few seconds after they are freed).
# ================================================================================
INGEST_BODIES="" INGEST_NBODIES="" INGEST_NEVENTS=""
bench_touch() {
  local bin=$BUILD/bench/touch_ceiling src=$HERE/touch_ceiling.c
  mkdir -p "$BUILD/bench"
  if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
    if ! ${CC:-cc} -O2 -std=c17 -D_GNU_SOURCE -Wall -o "$bin" "$src" 2>"$TMP/touch-cc.txt"; then
      note "touch_ceiling did not compile: $(head -n 3 "$TMP/touch-cc.txt" | tr '\n' ' ')"
      return 1
    fi
  fi
  log "touch_ceiling 4"
  if ! "$bin" 4 >"$TMP/touch.txt" 2>"$TMP/touch-err.txt"; then
    note "touch_ceiling failed: $(tr '\n' ' ' <"$TMP/touch-err.txt")"
    return 1
  fi
  local first again
  first=$(awk '$1 == "touch_first_us_per_page" { print $2 }' "$TMP/touch.txt")
  again=$(awk '$1 == "touch_again_us_per_page" { print $2 }' "$TMP/touch.txt")
  row "ceiling: first touch of 4 GB, then again (us a 4 KB page)" "$first, then $again" "" "$(ratio "$first" "$again")"
}

bench_ingest_warm() {
  if [ ! -s "$INGEST_BODIES" ]; then
    note "ingest on memory just in use skipped: no bodies from run 3"
    return
  fi
  start_server "$TMP/data-ingest-warm" ingest-warm || return
  python3 "$HERE/decide_setup.py" "http://127.0.0.1:$SRV_PORT" "$ADMIN_AUTH" >/dev/null 2>&1 ||
    note "decide setup failed before the second ingest run"
  sync
  if ! bench_touch; then
    stop_server ingest-warm
    return
  fi
  log "ingest again on memory just in use: $INGEST_NBODIES bodies into a fresh store"
  batch_send "$INGEST_BODIES" "$INGEST_NBODIES" "$TMP/wrk-batch-warm.txt" ingest-warm
  local ok elapsed stored eps
  ok=$(awk '$1 == "batch_ok" { print $2 }' "$TMP/wrk-batch-warm.txt")
  elapsed=$(awk '$1 == "batch_elapsed_s" { print $2 }' "$TMP/wrk-batch-warm.txt")
  stored=$(stored_events)
  stop_server ingest-warm
  rm -rf "$TMP/data-ingest-warm"
  if [ -n "$BATCH_STALLED" ] || [ "${ok:-0}" != "$INGEST_NBODIES" ]; then
    note "ingest on memory just in use: ${ok:-0} of $INGEST_NBODIES bodies answered 200 ${BATCH_STALLED:+($BATCH_STALLED)}"
    return
  fi
  eps=$(awk -v a="$INGEST_NEVENTS" -v e="$elapsed" 'BEGIN { if (e > 0) print a / e; else print 0 }')
  row "ingest again, memory just in use (events/s)" "$(num "$eps")" "$(num "$LMDB_RANDOM") LMDB random" "$(ratio "$eps" "$LMDB_RANDOM")"
  row "  same: run time; events in the store" "$(awk -v e="$elapsed" 'BEGIN { printf "%.1f s", e }'); $(num "${stored:-?}")" "$(num "$INGEST_NEVENTS") sent"
}

# ================================================================================
# 6. Profile reads on the ingested store (runs right after 3, same server).
# ================================================================================
bench_profiles() {
  if [ -z "$IDS_FILE" ] || ! server_alive; then
    note "profile reads skipped: no ingested store"
    return
  fi
  log "profiles: wrk -t$WRK_T -c16 -d${SECONDS_RUN}s --latency, $(wc -l <"$IDS_FILE") ids"
  wrk -t"$WRK_T" -c16 -d"${SECONDS_RUN}s" --latency -s "$HERE/profiles.lua" \
    "http://127.0.0.1:$SRV_PORT/v1/admin/profiles" -- "$IDS_FILE" "$ADMIN_AUTH" >"$TMP/wrk-profiles.txt" 2>&1
  local rps p50 p99 bad se
  rps=$(wrk_rps "$TMP/wrk-profiles.txt")
  if [ -z "$rps" ] || [ "$(wrk_requests "$TMP/wrk-profiles.txt")" = 0 ]; then
    note "profiles: no answers: $(tail -n 3 "$TMP/wrk-profiles.txt" | tr '\n' ' ')"
    return
  fi
  p50=$(wrk_pct "$TMP/wrk-profiles.txt" 50)
  p99=$(wrk_pct "$TMP/wrk-profiles.txt" 99)
  bad=$(wrk_non2xx "$TMP/wrk-profiles.txt")
  se=$(wrk_sockerr "$TMP/wrk-profiles.txt")
  rate_row "GET /v1/admin/profiles/{id}, c16 (req/s)" "$rps" 16
  row "GET /v1/admin/profiles/{id}, p50" "$(fmt_ms "$p50")" "$(fmt_ms "$NGX_P50") nginx" "$(ratio "$p50" "$NGX_P50")"
  row "GET /v1/admin/profiles/{id}, p99" "$(fmt_ms "$p99")" "$(fmt_ms "$NGX_P99") nginx" "$(ratio "$p99" "$NGX_P99")"
  [ "$bad" != 0 ] && row "GET /v1/admin/profiles/{id}: non-2xx" "$bad of $(num "$(wrk_requests "$TMP/wrk-profiles.txt")")" "0"
  [ -n "$se" ] && note "profiles: wrk socket errors: $se"
}

# ================================================================================
# 7. Decisions on the ingested store (runs after 6, same server): 50 segments
#    and 100 active campaigns over 4 placements (bench/decide_setup.py), one
#    POST /v1/decide a page asking for the 4 placements.
# ================================================================================
bench_decide() {
  if [ -z "$IDS_FILE" ] || ! server_alive; then
    note "decisions skipped: no ingested store"
    return
  fi
  if [ -z "$DECIDE_READY" ]; then
    note "decisions skipped: the segments and campaigns could not be created"
    return
  fi
  log "decide: $(cat "$TMP/decide-setup.txt"); wrk -t$WRK_T -c16 -d${SECONDS_RUN}s --latency"
  sync # the ingest's pages are written back before, not during, the run
  wrk -t"$WRK_T" -c16 -d"${SECONDS_RUN}s" --latency -s "$HERE/decide.lua" \
    "http://127.0.0.1:$SRV_PORT/v1/decide" -- "$IDS_FILE" "$WRITE_AUTH" >"$TMP/wrk-decide.txt" 2>&1
  local rps p50 p99 bad se server_us
  rps=$(wrk_rps "$TMP/wrk-decide.txt")
  if [ -z "$rps" ] || [ "$(wrk_requests "$TMP/wrk-decide.txt")" = 0 ]; then
    note "decide: no answers: $(tail -n 3 "$TMP/wrk-decide.txt" | tr '\n' ' ')"
    return
  fi
  p50=$(wrk_pct "$TMP/wrk-decide.txt" 50)
  p99=$(wrk_pct "$TMP/wrk-decide.txt" 99)
  bad=$(wrk_non2xx "$TMP/wrk-decide.txt")
  se=$(wrk_sockerr "$TMP/wrk-decide.txt")
  # server time: the share of decisions under 1 ms, and the mean, from /metrics
  server_us=$(curl -s --max-time 5 "http://127.0.0.1:$SRV_PORT/metrics" | awk '
    $1 ~ /^bespoke_decide_latency_seconds_bucket/ && $1 ~ /le="0.001"/ { under = $2 }
    $1 == "bespoke_decide_latency_seconds_sum" { s = $2 }
    $1 == "bespoke_decide_latency_seconds_count" { n = $2 }
    END { if (n > 0) printf "mean %.0f us, %.2f%% under 1 ms", s / n * 1e6, under / n * 100 }')
  rate_row "POST /v1/decide, 4 placements, c16 (req/s)" "$rps" 16
  row "POST /v1/decide, p50" "$(fmt_ms "$p50")" "$(fmt_ms "$NGX_P50") nginx" "$(ratio "$p50" "$NGX_P50")"
  row "POST /v1/decide, p99" "$(fmt_ms "$p99")" "$(fmt_ms "$NGX_P99") nginx" "$(ratio "$p99" "$NGX_P99")"
  row "POST /v1/decide, server time" "${server_us:-?}"
  [ "$bad" != 0 ] && row "POST /v1/decide: non-2xx" "$bad of $(num "$(wrk_requests "$TMP/wrk-decide.txt")")" "0"
  [ -n "$se" ] && note "decide: wrk socket errors: $se"
}

# ================================================================================
# 7b. Decisions over a million profiles: the same 50 segments and 100
#     campaigns, a store of BENCH_PROFILES visitors (2 events each, imported
#     with the segments defined so memberships are kept during the import).
# ================================================================================
PROFILES=${BENCH_PROFILES:-1000000}
bench_decide_million() {
  local sim=$TMP/sim-million.jsonl data=$TMP/data-million
  # Short visits (a landing page and one action) of visitors arriving over one
  # day: 4 events a visitor give about a million profiles.
  log "decide x$PROFILES profiles: simulate --events $((PROFILES * 4)) --visitors $PROFILES --arrival-days 1 --actions 0"
  if ! "$BESPOKE" simulate --events $((PROFILES * 4)) --visitors "$PROFILES" --arrival-days 1 \
    --actions 0 --seed 7 --out "$sim" 2>"$TMP/sim-million-err.txt"; then
    note "decide x$PROFILES: simulate failed: $(head -n 2 "$TMP/sim-million-err.txt" | tr '\n' ' ')"
    return
  fi
  # 200,000 visitors drawn: in a 10-second run each is read for the first time once
  # (from the store, parsed), then mostly from the memo
  python3 "$HERE/pack_batches.py" --per-batch 100 --ids 200000 "$sim" /dev/null "$TMP/ids-million.txt" >/dev/null
  start_server "$data" million-setup || return
  if ! python3 "$HERE/decide_setup.py" "http://127.0.0.1:$SRV_PORT" "$ADMIN_AUTH" >/dev/null 2>&1; then
    note "decide x$PROFILES: setup failed"
    stop_server million-setup
    return
  fi
  stop_server million-setup
  log "import $((PROFILES * 4)) events into the store with 57 segments"
  if ! "$BESPOKE" import --data "$data" --format segment-jsonl --no-progress "$sim" \
    >"$TMP/import-million.txt" 2>&1; then
    note "decide x$PROFILES: import failed: $(tail -n 2 "$TMP/import-million.txt" | tr '\n' ' ')"
    return
  fi
  rm -f "$sim"
  log "$(grep '^imported:' "$TMP/import-million.txt")"
  sync # the import's 3-4 GB of pages are written back before, not during, the run
  start_server "$data" million || return
  local profiles
  profiles=$(curl -s --max-time 10 -H "Authorization: $ADMIN_AUTH" "http://127.0.0.1:$SRV_PORT/v1/admin/stats" |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("profiles", "?"))' 2>/dev/null)
  wrk -t"$WRK_T" -c16 -d"${SECONDS_RUN}s" --latency -s "$HERE/decide.lua" \
    "http://127.0.0.1:$SRV_PORT/v1/decide" -- "$TMP/ids-million.txt" "$WRITE_AUTH" >"$TMP/wrk-decide-million.txt" 2>&1
  local rps p50 p99 server_us
  rps=$(wrk_rps "$TMP/wrk-decide-million.txt")
  p50=$(wrk_pct "$TMP/wrk-decide-million.txt" 50)
  p99=$(wrk_pct "$TMP/wrk-decide-million.txt" 99)
  server_us=$(curl -s --max-time 5 "http://127.0.0.1:$SRV_PORT/metrics" | awk '
    $1 ~ /^bespoke_decide_latency_seconds_bucket/ && $1 ~ /le="0.001"/ { under = $2 }
    $1 == "bespoke_decide_latency_seconds_sum" { s = $2 }
    $1 == "bespoke_decide_latency_seconds_count" { n = $2 }
    END { if (n > 0) printf "mean %.0f us, %.2f%% under 1 ms", s / n * 1e6, under / n * 100 }')
  rate_row "POST /v1/decide, $(num "$profiles") profiles, c16 (req/s)" "$rps" 16
  row "  same, p50 / p99; server time" "$(fmt_ms "$p50") / $(fmt_ms "$p99"); ${server_us:-?}"
  stop_server million
  rm -rf "$data"
}

# ================================================================================
# 4. Small track calls.
# ================================================================================
bench_track() { # [WAL_SYNC]: the default (answered once on disk), or e.g. 10ms
  local mode=${1:-} name=track label=""
  [ -n "$mode" ] && name=track-lazy label=", --wal-sync $mode"
  sync # the earlier runs' dirty pages would be written back inside this one
  BENCH_SERVER_ENV="${mode:+BESPOKE_WAL_SYNC=$mode}" start_server "$TMP/data-$name" "$name" || return
  local before after m0 m1
  before=$(stored_events)
  m0=$(metrics_snap)
  log "track$label: wrk -t$WRK_T -c64 -d${SECONDS_RUN}s"
  wrk -t"$WRK_T" -c64 -d"${SECONDS_RUN}s" --timeout 10s -s "$HERE/track.lua" \
    "http://127.0.0.1:$SRV_PORT/v1/track" -- "$WRITE_AUTH" >"$TMP/wrk-$name.txt" 2>&1
  local rps bad total se
  rps=$(wrk_rps "$TMP/wrk-$name.txt")
  bad=$(wrk_non2xx "$TMP/wrk-$name.txt")
  total=$(wrk_requests "$TMP/wrk-$name.txt")
  se=$(wrk_sockerr "$TMP/wrk-$name.txt")
  m1=$(metrics_snap)
  sleep 1 # the last commits of calls that wrk stopped waiting for
  after=$(stored_events)
  rate_row "POST /v1/track ~200 B, c64$label (req/s)" "$rps" 64
  row "track$label: non-2xx answers" "$bad of $(num "$total")" "0"
  commit_row "track$label" "$m0" "$m1" "$SECONDS_RUN"
  if [ -n "$before" ] && [ -n "$after" ] && [ -n "$total" ]; then
    local acked=$((total - bad)) stored=$((after - before))
    row "track$label: events stored / acknowledged" "$(num "$stored") / $(num "$acked")"
    # wrk stops with up to 64 calls in flight: those may be stored, unacknowledged.
    if [ "$stored" -lt "$acked" ] || [ "$stored" -gt $((acked + 64)) ]; then
      note "track$label: $stored events stored but $acked calls acknowledged"
    fi
  fi
  [ -n "$se" ] && note "track$label: wrk socket errors: $se"
  [ -z "$rps" ] && note "track$label: wrk: $(tail -n 3 "$TMP/wrk-$name.txt" | tr '\n' ' ')"
  stop_server "$name"
}

# ================================================================================
# 5. Bulk import of UCI Online Retail.
# ================================================================================
bench_import() {
  local file=$DATA/online-retail/online_retail.csv.zst
  if [ ! -f "$file" ]; then
    row "import online-retail (rows/s)" "skipped" "" ""
    note "import skipped: ../shared/data/online-retail/online_retail.csv.zst is absent"
    return
  fi
  log "import --format online-retail online_retail.csv.zst"
  if ! "$BESPOKE" import --data "$TMP/data-import" --format online-retail --no-progress "$file" \
    >"$TMP/import.txt" 2>&1; then
    note "import failed: $(tail -n 3 "$TMP/import.txt" | tr '\n' ' ')"
    return
  fi
  local line rows rps eps
  line=$(grep '^imported:' "$TMP/import.txt")
  rows=$(sed -n 's/^imported: \([0-9]*\) rows.*/\1/p' <<<"$line")
  rps=$(sed -n 's/.*(\([0-9.]*\) rows\/s, \([0-9.]*\) events\/s).*/\1/p' <<<"$line")
  eps=$(sed -n 's/.*(\([0-9.]*\) rows\/s, \([0-9.]*\) events\/s).*/\2/p' <<<"$line")
  row "import online-retail, $(num "$rows") rows (rows/s)" "$(num "$rps")" "$(num "$LMDB_RANDOM") LMDB random" "$(ratio "$rps" "$LMDB_RANDOM")"
  row "import online-retail (events/s)" "$(num "$eps")" "$(num "$LMDB_RANDOM") LMDB random" "$(ratio "$eps" "$LMDB_RANDOM")"
  log "$line"
  grep -q '^first reject' "$TMP/import.txt" && log "$(grep '^first reject' "$TMP/import.txt")"
}

# ================================================================================
# 6. Recommendations: training time per model beside the sgemm ceiling, and
#    the rate and latency of POST /v1/recommendations (on the imported store).
# ================================================================================
SGEMM_GFLOPS=""
bench_sgemm() {
  local bin=$BUILD/bench/sgemm_ceiling src=$HERE/sgemm_ceiling.c
  mkdir -p "$BUILD/bench"
  if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
    if ! ${CC:-cc} -O2 -std=c17 -D_GNU_SOURCE -Wall -o "$bin" "$src" -lopenblas 2>"$TMP/sgemm-cc.txt"; then
      note "sgemm_ceiling did not compile: $(head -n 3 "$TMP/sgemm-cc.txt" | tr '\n' ' ')"
      return
    fi
  fi
  log "sgemm_ceiling 2048 5"
  SGEMM_GFLOPS=$("$bin" 2048 5 | awk '$1 == "sgemm_gflops" { print $2 }')
  row "OpenBLAS sgemm 2048 (GFLOP/s)" "${SGEMM_GFLOPS:-?}"
}

bench_reco() {
  bench_sgemm
  if [ ! -d "$TMP/data-import" ]; then
    note "recommendation rows skipped: no imported store (../shared/data absent?)"
    return
  fi
  log "train --data (the imported Online Retail store)"
  if ! "$BESPOKE" train --data "$TMP/data-import" --holdout-days 0 --no-progress \
    >"$TMP/train.txt" 2>&1; then
    note "train failed: $(tail -n 3 "$TMP/train.txt" | tr '\n' ' ')"
    return
  fi
  local model sec entries total ease_gf
  while read -r model sec entries; do
    row "train $model (s, entries)" "$sec s, $(num "$entries")"
  done < <(awk '/^model / { on = 1; next } on && NF == 3 && $2 ~ /^[0-9.]+$/ { print } /^trained/ { on = 0 }' "$TMP/train.txt")
  total=$(sed -n 's/^trained in \([0-9.]*\) s.*/\1/p' "$TMP/train.txt")
  row "train, all models (s)" "${total:-?} s"
  ease_gf=$(sed -n 's/^ease: .*(\([0-9.]*\) GFLOP\/s).*/\1/p' "$TMP/train.txt")
  row "EASE Cholesky + inverse (GFLOP/s)" "${ease_gf:-?}" "${SGEMM_GFLOPS:-?} sgemm" "$(ratio "$ease_gf" "$SGEMM_GFLOPS")"
  local per_m
  per_m=$(sed -n 's/^memory per 1M interactions: \([0-9.]*\) MB.*/\1/p' "$TMP/train.txt")
  row "snapshot memory per 1M interactions (MB)" "${per_m:-?} MB"
  start_server "$TMP/data-import" reco || return
  log "recommendations: wrk -t$WRK_T -c16 -d${SECONDS_RUN}s"
  wrk -t"$WRK_T" -c16 -d"${SECONDS_RUN}s" --timeout 10s --latency -s "$HERE/reco.lua" \
    "http://127.0.0.1:$SRV_PORT/v1/recommendations" -- "$WRITE_AUTH" >"$TMP/wrk-reco.txt" 2>&1
  local rps p50 p99 bad
  rps=$(wrk_rps "$TMP/wrk-reco.txt")
  p50=$(wrk_pct "$TMP/wrk-reco.txt" 50)
  p99=$(wrk_pct "$TMP/wrk-reco.txt" 99)
  bad=$(wrk_non2xx "$TMP/wrk-reco.txt")
  rate_row "POST /v1/recommendations n=20, c16 (req/s)" "$rps" 16
  row "POST /v1/recommendations, p50 / p99" "$(fmt_ms "$p50") / $(fmt_ms "$p99")"
  [ "$bad" != 0 ] && row "POST /v1/recommendations: non-2xx" "$bad of $(num "$(wrk_requests "$TMP/wrk-reco.txt")")" "0"
  # Lookalikes of the built-in high_value segment (target: p99 < 2 ms for n = 20).
  log "lookalike: wrk -t1 -c1 -d${SECONDS_RUN}s GET .../high_value/lookalike?n=20"
  wrk -t1 -c1 -d"${SECONDS_RUN}s" --timeout 10s --latency -s "$HERE/lookalike.lua" \
    "http://127.0.0.1:$SRV_PORT/v1/admin/segments/high_value/lookalike?n=20" -- "$ADMIN_AUTH" \
    >"$TMP/wrk-lookalike.txt" 2>&1
  row "GET .../segments/high_value/lookalike n=20, p50 / p99" \
    "$(fmt_ms "$(wrk_pct "$TMP/wrk-lookalike.txt" 50)") / $(fmt_ms "$(wrk_pct "$TMP/wrk-lookalike.txt" 99)")" "2 ms p99 target"
  bad=$(wrk_non2xx "$TMP/wrk-lookalike.txt")
  [ "$bad" != 0 ] && row "lookalike: non-2xx" "$bad of $(num "$(wrk_requests "$TMP/wrk-lookalike.txt")")" "0"
  stop_server reco
}

# ================================================================================
# 6b. Predictive scores: `bespoke predict` on the imported store (read the
#     timelines, train the four models, score and rewrite every profile).
# ================================================================================
bench_predict() {
  if [ ! -d "$TMP/data-import" ]; then
    note "predict rows skipped: no imported store (../shared/data absent?)"
    return
  fi
  log "predict --data (the imported Online Retail store)"
  if ! "$BESPOKE" predict --data "$TMP/data-import" --no-progress >"$TMP/predict.txt" 2>&1; then
    note "predict failed: $(tail -n 3 "$TMP/predict.txt" | tr '\n' ' ')"
    return
  fi
  local n written read train score write total wps
  n=$(sed -n 's/^scored \([0-9]*\) profiles.*/\1/p' "$TMP/predict.txt")
  written=$(sed -n 's/^scored .*: \([0-9]*\) written.*/\1/p' "$TMP/predict.txt")
  read -r read train score write total < <(sed -n 's/^time: read \([0-9.]*\) s, train \([0-9.]*\) s, score \([0-9.]*\) s, write \([0-9.]*\) s, total \([0-9.]*\) s/\1 \2 \3 \4 \5/p' "$TMP/predict.txt")
  wps=$(awk -v w="$written" -v t="$write" 'BEGIN { if (t > 0) printf "%.0f", w / t }')
  row "predict: read timelines + train 4 models, $(num "${n:-0}") profiles" "${read:-?} s + ${train:-?} s"
  row "predict: score + write (profiles/s written)" "${score:-?} s + ${write:-?} s; $(num "${wps:-0}")/s" "$(num "$LMDB_RANDOM") LMDB random" "$(ratio "$wps" "$LMDB_RANDOM")"
}

# ================================================================================
want() { [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }
want nginx && bench_nginx
want lmdb && bench_lmdb
if [ -x "$BESPOKE" ]; then
  if ! want ingest; then
    :
  elif bench_ingest; then
    bench_profiles
    bench_decide
  else
    note "profile reads skipped: the ingest run did not complete"
  fi
  stop_server ingest
  want ingest && bench_ingest_warm
  rm -f "$INGEST_BODIES"
  want decide_million && bench_decide_million
  want track && { bench_track; bench_track 10ms; }
  want import && bench_import
  want reco && bench_reco
  want predict && bench_predict
else
  note "Bespoke rows skipped: $BESPOKE is not built"
fi

END_TS=$(date +%s)
echo
echo "Bespoke benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $COMMIT"
echo "machine: $CORES cores (nproc), $CPU; shared and noisy: compare ratios, not absolutes"
echo "wrk -t$WRK_T on the same cores as the server (--threads $SERVER_THREADS); run took $((END_TS - START_TS)) s"
echo
print_table
if [ ${#NOTES[@]} -gt 0 ]; then
  echo
  echo "notes:"
  for n in "${NOTES[@]}"; do echo "  - $n"; done
fi
