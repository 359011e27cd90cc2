#!/usr/bin/env bash
# Every figure of BENCHMARKS.md in one run, on one machine, side by side:
#   1. throughput: the Node.js reference (fsync on), kliq-webhooks serve (durable file store), and
#      serve --store memory (verify + parse + answer: the HTTP stack's ceiling), each driven by wrk;
#   2. latency at a fixed offered load (half of the file store's throughput from 1), open loop, for
#      Node and for kliq-files;
#   3. a soak at that load, sampling the server's resident memory every 5 s;
#   4. 500 KB results (5,000 detections each);
#   5. history: an empty store against one holding HISTORY_EVENTS events (start-up time, throughput).
# Then a table of the performance targets, each met or missed, computed from this run's numbers.
#
# usage: Benchmarks/run.sh [DURATION=15s] [CONNECTIONS=64] [DELIVERIES=120000]
# env:   SOAK_SECONDS (300), HISTORY_EVENTS (1000000), SECTIONS (default "1 2 3 4 5")
# needs: wrk and node (installed here from Debian when missing), python3, a release build (made here).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15s}
CONNECTIONS=${2:-64}
COUNT=${3:-120000}
SOAK_SECONDS=${SOAK_SECONDS:-300}
HISTORY_EVENTS=${HISTORY_EVENTS:-1000000}
SECTIONS=${SECTIONS:-1 2 3 4 5}
PORT=18099
SECRET=whsec_bench_secret
URL="http://127.0.0.1:$PORT"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v node >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs; }

swift build -c release --product kliq-webhooks >/dev/null
BIN=$(swift build -c release --show-bin-path)/kliq-webhooks
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; echo "removing $WORK…" >&2; rm -rf "$WORK"' EXIT
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
say() { echo "[$(date +%H:%M:%S)] $*" >&2; }

say "generating $COUNT signed ~2.1 KB deliveries (Python hmac)…"
python3 Benchmarks/gen_deliveries.py "$WORK/deliveries.tsv" "$COUNT" --secret "$SECRET" >/dev/null
NEXT=0  # deliveries of open.tsv used so far by open-loop runs (each delivery is sent once)

# start NAME COMMAND…: start a server in the background; sets PID; waits until the port answers.
start() {
  local name=$1; shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PID=$!
  for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return; sleep 0.1; done
  say "$name did not start:"; cat "$WORK/$name.err" >&2; exit 1
}
stop() { kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; }
node_server() { exec env PORT=$PORT SECRET=$SECRET DATA_DIR="$WORK/$1" FSYNC=1 node Benchmarks/node_receiver.js; }
kliq_server() { exec env KLIQ_WEBHOOK_SECRET=$SECRET KLIQ_METRICS_PORT=off KLIQ_ADMIN_PORT=off "$BIN" serve --port $PORT --log-level warning "$@"; }

# wrk_run NAME DELIVERIES CONNECTIONS DURATION: wrk against the running server; appends a JSON result.
wrk_run() {
  DELIVERIES="$2" WRK_THREADS=2 wrk -t2 -c"$3" -d"$4" --latency -s Benchmarks/kliq.lua "$URL" >"$WORK/$1.wrk" 2>&1
  local rss cpu
  rss=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
  cpu=$(awk '{printf "%.1f", ($14 + $15) / 100}' /proc/$PID/stat)
  python3 - "$1" "$WORK/$1.wrk" "$rss" "$cpu" >>"$RESULTS" <<'PY'
import json, re, sys
name, path, rss, cpu = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
text = open(path).read()
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v); return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", text, re.M))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = re.search(r"Socket errors: (.*)", text)
print(json.dumps({"kind": "wrk", "name": name, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
    "p50": ms(lat["50"]), "p90": ms(lat["90"]), "p99": ms(lat["99"]), "max": ms(re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", text).group(1)),
    "non2xx": int(non2xx.group(1)) if non2xx else 0, "errors": errors.group(1).strip() if errors else "none",
    "rss_mib": round(rss / 1024), "cpu_s": cpu}))
PY
}

# open_run NAME RATE SECONDS: open-loop load on the running server with fresh deliveries.
open_run() {
  local need
  need=$(python3 -c "print(int($2 * $3))")
  python3 Benchmarks/openloop.py "$URL/webhooks/kliq" "$WORK/open.tsv" "$2" "$3" --skip $NEXT --pid "$PID" \
    | python3 -c "import json,sys; r=json.load(sys.stdin); r.update(kind='open', name='$1'); print(json.dumps(r))" >>"$RESULTS"
  NEXT=$((NEXT + need))
}
result() { python3 -c "import json,sys; print(next(json.loads(l)['$2'] for l in open('$RESULTS') if json.loads(l)['name'] == '$1'))"; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r); swift: $(swift --version 2>&1 | head -1)" >&2
echo "command: Benchmarks/run.sh $DURATION $CONNECTIONS $COUNT  (SOAK_SECONDS=$SOAK_SECONDS HISTORY_EVENTS=$HISTORY_EVENTS)" >&2

# On ext4 without a journal (this machine's root file system), creating files is much slower for
# about 30 s after many files were deleted (the allocator skips recently freed inodes one by one), so
# a run right after a previous run's clean-up would measure that instead. Let it pass.
say "waiting 35 s for earlier deletions to age (see BENCHMARKS.md)…"
sleep 35

if [[ " $SECTIONS " == *" 1 "* ]]; then
  for name in node kliq-files kliq-memory; do
    say "1. throughput: $name (wrk -t2 -c$CONNECTIONS -d$DURATION)"
    case $name in
      node) start node node_server node1 ;;
      kliq-files) start kliq-files kliq_server --data-dir "$WORK/kliq1" ;;
      kliq-memory) start kliq-memory kliq_server --store memory ;;
    esac
    wrk_run "$name" "$WORK/deliveries.tsv" "$CONNECTIONS" "$DURATION"
    stop
  done
fi
HALF=$(python3 -c "print(round($(result kliq-files rps 2>/dev/null || echo 2000) / 2))")
if [[ " $SECTIONS " == *" 2 "* || " $SECTIONS " == *" 3 "* ]]; then
  OPEN_COUNT=$(( HALF * (40 + SOAK_SECONDS) + 1000 ))
  say "generating $OPEN_COUNT more deliveries for the open-loop runs (each is sent once)…"
  python3 Benchmarks/gen_deliveries.py "$WORK/open.tsv" "$OPEN_COUNT" --secret "$SECRET" --start 10000000 >/dev/null
fi

if [[ " $SECTIONS " == *" 2 "* ]]; then
  for name in node kliq-files; do
    say "2. latency at a fixed $HALF req/s (half of kliq-files' throughput), open loop, 20 s: $name"
    if [[ $name == node ]]; then start node-fixed node_server node2; else start kliq-fixed kliq_server --data-dir "$WORK/kliq2"; fi
    open_run "$name-fixed" "$HALF" 20
    stop
  done
fi

if [[ " $SECTIONS " == *" 3 "* ]]; then
  say "3. soak: kliq-files at $HALF req/s for $SOAK_SECONDS s, RSS every 5 s"
  start kliq-soak kliq_server --data-dir "$WORK/kliq3"
  open_run kliq-soak "$HALF" "$SOAK_SECONDS"
  stop
fi

if [[ " $SECTIONS " == *" 4 "* ]]; then
  say "4. 500 KB results: generating 1,500 deliveries of ~500 KB (2,800 detections each)…"
  python3 Benchmarks/gen_deliveries.py "$WORK/large.tsv" 1500 --secret "$SECRET" --detections 2800 --failed-rate 0 --start 50000000 >/dev/null
  say "   body size: $(head -1 "$WORK/large.tsv" | cut -f2 | wc -c) bytes; wrk -t2 -c16 -d5s"
  start kliq-large kliq_server --data-dir "$WORK/kliq4"
  wrk_run kliq-large "$WORK/large.tsv" 16 5s
  stop
  rm -f "$WORK/large.tsv"
fi

if [[ " $SECTIONS " == *" 5 "* ]]; then
  # Empty, full, empty, full: the two stores alternate, so drift on this shared machine hits both.
  for k in a b c d; do
    python3 Benchmarks/gen_deliveries.py "$WORK/hist-$k.tsv" 60000 --secret "$SECRET" --start $(( 30000000 + 100000 * $(printf '%d' "'$k") )) >/dev/null
  done
  say "5. history: empty store (wrk -c$CONNECTIONS -d10s)"
  start kliq-empty-1 kliq_server --data-dir "$WORK/kliq5-empty-1"
  wrk_run kliq-empty-1 "$WORK/hist-a.tsv" "$CONNECTIONS" 10s
  stop
  say "   storing $HISTORY_EVENTS events the way a long-running store holds them…"
  python3 Benchmarks/populate.py "$WORK/kliq5-full" "$HISTORY_EVENTS"
  say "   waiting 35 s, as at the start"
  sleep 35
  say "   start-up on $HISTORY_EVENTS events"
  begin=$(date +%s%N)
  kliq_server --data-dir "$WORK/kliq5-full" >"$WORK/kliq-full.out" 2>"$WORK/kliq-full.err" &
  PID=$!
  until grep -q listening "$WORK/kliq-full.out" 2>/dev/null; do
    kill -0 $PID 2>/dev/null || { cat "$WORK/kliq-full.err" >&2; exit 1; }
    sleep 0.005
  done
  startup_ms=$(( ($(date +%s%N) - begin) / 1000000 ))
  echo "{\"kind\": \"startup\", \"name\": \"kliq-full-startup\", \"ms\": $startup_ms, \"events\": $HISTORY_EVENTS}" >>"$RESULTS"
  say "   throughput on $HISTORY_EVENTS events (wrk -c$CONNECTIONS -d10s)"
  wrk_run kliq-full-1 "$WORK/hist-b.tsv" "$CONNECTIONS" 10s
  stop
  say "   start-up of an empty store, then its throughput again"
  begin=$(date +%s%N)
  kliq_server --data-dir "$WORK/kliq5-empty-2" >"$WORK/kliq-fresh.out" 2>&1 &
  PID=$!
  until grep -q listening "$WORK/kliq-fresh.out" 2>/dev/null; do sleep 0.005; done
  echo "{\"kind\": \"startup\", \"name\": \"kliq-empty-startup\", \"ms\": $(( ($(date +%s%N) - begin) / 1000000 ))}" >>"$RESULTS"
  wrk_run kliq-empty-2 "$WORK/hist-c.tsv" "$CONNECTIONS" 10s
  stop
  say "   throughput on $HISTORY_EVENTS events again"
  start kliq-full-2 kliq_server --data-dir "$WORK/kliq5-full"
  wrk_run kliq-full-2 "$WORK/hist-d.tsv" "$CONNECTIONS" 10s
  stop
fi

cp "$RESULTS" "${RESULTS_OUT:-/dev/null}" 2>/dev/null || true
python3 Benchmarks/report.py "$RESULTS"
