#!/usr/bin/env bash
# Side-by-side HTTP benchmark: the Node.js reference receiver (fsync on), kliq-webhooks serve (durable
# file store), and kliq-webhooks serve --store memory (verify + parse + answer: the HTTP stack's ceiling).
# Same machine, same deliveries, same wrk settings, one after another in one run: compare the ratios.
#
# usage: Benchmarks/run.sh [DURATION=15s] [CONNECTIONS=64] [DELIVERIES=120000]
# needs: wrk and node (apt-get install wrk nodejs), python3, a release build (made here).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15s}
CONNECTIONS=${2:-64}
COUNT=${3:-120000}
PORT=18099
SECRET=whsec_bench_secret
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v node >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs; }

swift build -c release --product kliq-webhooks >/dev/null
BIN=$(swift build -c release --show-bin-path)/kliq-webhooks
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
echo "generating $COUNT signed deliveries…" >&2
python3 Benchmarks/gen_deliveries.py "$WORK/deliveries.tsv" "$COUNT" --secret "$SECRET" >/dev/null

# run NAME COMMAND…: start the server, drive it with wrk, report throughput, latency, errors, peak RSS, CPU.
run() {
  local name=$1; shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  local pid=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  DELIVERIES="$WORK/deliveries.tsv" WRK_THREADS=2 wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency \
    -s Benchmarks/kliq.lua "http://127.0.0.1:$PORT" >"$WORK/$name.wrk" 2>&1
  local rss cpu
  rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  cpu=$(awk '{printf "%.1f", ($14 + $15) / 100}' /proc/$pid/stat)
  kill -TERM $pid; wait $pid 2>/dev/null || true
  python3 - "$name" "$WORK/$name.wrk" "$rss" "$cpu" <<'PY'
import re, sys
name, path, rss, cpu = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
text = open(path).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", text, re.M))
mx = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", text).group(1)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = re.search(r"Socket errors: (.*)", text)
print(f"{name}\t{rps:.0f}\t{lat.get('50')}\t{lat.get('90')}\t{lat.get('99')}\t{mx}\t{non2xx.group(1) if non2xx else 0}"
      f"\t{errors.group(1).strip() if errors else 'none'}\t{rss/1024:.0f}\t{cpu}")
PY
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r); swift: $(swift --version 2>&1 | head -1)" >&2
echo "command: Benchmarks/run.sh $DURATION $CONNECTIONS $COUNT  (wrk -t2 -c$CONNECTIONS -d$DURATION, ~2.1 KB bodies)" >&2
{
  echo -e "receiver\treq/s\tp50\tp90\tp99\tmax\tnon-2xx\tsocket errors\tpeak RSS MiB\tCPU s"
  run node env PORT=$PORT SECRET=$SECRET DATA_DIR="$WORK/node" FSYNC=1 node Benchmarks/node_receiver.js
  run kliq-files env KLIQ_WEBHOOK_SECRET=$SECRET "$BIN" serve --port $PORT --data-dir "$WORK/kliq" --log-level warning
  run kliq-memory env KLIQ_WEBHOOK_SECRET=$SECRET "$BIN" serve --port $PORT --store memory --log-level warning
} | tee "$WORK/table.tsv" | column -t -s $'\t'
python3 - "$WORK/table.tsv" <<'PY'
import sys
rows = {r.split("\t")[0]: r.split("\t") for r in open(sys.argv[1]).read().splitlines()[1:]}
node, files, memory = (float(rows[k][1]) for k in ("node", "kliq-files", "kliq-memory"))
print(f"\nratios in this run: kliq-files / node = {files / node:.2f}x; kliq-files / kliq-memory = {files / memory:.0%}")
PY
