#!/usr/bin/env bash
# Side-by-side A/B of two kliq-webhooks builds on a freshly made ext4 file system (a loop-mounted
# image, so earlier deletions cannot slow file creation), alternating A and B for ROUNDS rounds:
#   files   serve on the file store, no handlers (the durable intake path)
#   exec    serve on the file store with `--exec true` (intake + dispatch + ledger transitions)
#   memory  serve --store memory (verify + parse + answer: the HTTP stack's ceiling)
#   bare    kliq-bare-receiver (Benchmarks/Bare: Hummingbird, verify the HMAC, answer 200), once a round
# For each run: 2xx answers/s, server CPU per 2xx (utime+stime over the run / 2xx), peak RSS, and the
# journal segments left at the end of the run (a checkpoint that cannot keep up leaves them piling up).
#
# usage: Benchmarks/ab.sh A_BINARY B_BINARY [DURATION=15s] [CONNECTIONS=64] [ROUNDS=2]
# env:   BARE=path of a release kliq-bare-receiver (default: built here)
# needs: root (mount), wrk (installed from Debian when missing), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$(realpath "$1"); B=$(realpath "$2")
if [ -z "${BARE:-}" ]; then swift build -c release --product kliq-bare-receiver >/dev/null; BARE=$(swift build -c release --show-bin-path)/kliq-bare-receiver; fi
DURATION=${3:-15s}; CONNECTIONS=${4:-64}; ROUNDS=${5:-2}
PORT=18098; SECRET=whsec_bench_secret
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
WORK=$(mktemp -d); MNT="$WORK/mnt"; mkdir -p "$MNT"
truncate -s 6G "$WORK/fs.img"; mkfs.ext4 -q -F "$WORK/fs.img"; mount -o loop "$WORK/fs.img" "$MNT"
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 1; umount "$MNT" 2>/dev/null || umount -l "$MNT"; rm -rf "$WORK"' EXIT
python3 Benchmarks/gen_deliveries.py "$WORK/deliveries.tsv" 150000 --secret "$SECRET" >/dev/null

run() {  # run LABEL BINARY MODE
  local label=$1 bin=$2 mode=$3 data="$MNT/$1-$RANDOM" args=()
  case $mode in
    files) args=(--data-dir "$data") ;;
    exec) args=(--data-dir "$data" --exec true) ;;
    memory) args=(--store memory) ;;
  esac
  if [ "$mode" = bare ]; then
    KLIQ_WEBHOOK_SECRET=$SECRET "$bin" $PORT >/dev/null 2>"$WORK/err" &
  else
    KLIQ_WEBHOOK_SECRET=$SECRET KLIQ_METRICS_PORT=off KLIQ_ADMIN_PORT=off "$bin" serve --port $PORT --log-level warning "${args[@]}" >/dev/null 2>"$WORK/err" &
  fi
  local pid=$!
  for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  local before; before=$(awk '{print $14 + $15}' /proc/$pid/stat)
  DELIVERIES="$WORK/deliveries.tsv" WRK_THREADS=2 wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s Benchmarks/kliq.lua "http://127.0.0.1:$PORT" >"$WORK/wrk" 2>&1
  local after rss segments
  after=$(awk '{print $14 + $15}' /proc/$pid/stat); rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  segments=$( [ -d "$data/journal" ] && ls "$data/journal" | wc -l || echo -)
  kill -TERM $pid; wait $pid 2>/dev/null || true
  python3 - "$label" "$mode" "$WORK/wrk" "$before" "$after" "$rss" "$segments" <<'PY'
import re, sys
label, mode, path, before, after, rss, segments = sys.argv[1:]
text = open(path).read()
total = int(re.search(r"(\d+) requests in", text).group(1))
non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", text) or [0, 0])[1])
seconds = float(re.search(r"requests in ([\d.]+)s", text).group(1))
ok = total - non2xx
cpu_us = (int(after) - int(before)) * 10000 / max(ok, 1)
print(f"{label:10} {mode:7} {ok / seconds:9.0f} 2xx/s  {cpu_us:6.0f} µs CPU/2xx  RSS {int(rss) // 1024:4d} MiB  journal segments left {segments}  non-2xx {non2xx}")
PY
  rm -rf "$data"; sync; sleep 3
}

echo "A: $A"; echo "B: $B"; echo "bare: $BARE"
echo "command: Benchmarks/ab.sh $* ($(nproc) cores; data on a fresh loop-mounted ext4)"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round"
  for mode in files exec memory; do
    run A "$A" "$mode"
    run B "$B" "$mode"
  done
  run bare "$BARE" bare
done
