#!/usr/bin/env bash
# The operator console over a store holding N events (Benchmarks/populate.py: events/, jobs/, one job each;
# plus a few dead letters delivered live): each page and API answer timed with curl, 1 warm-up and 7
# runs, median and worst in milliseconds. Plain temporary directory; serve's other listeners off.
#
# usage: Benchmarks/console.sh RELEASE_KLIQ_WEBHOOKS [N=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "$1"); N=${2:-100000}
SECRET=whsec_bench_secret
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 1; rm -rf $WORK' EXIT
echo "populating $N events…"; t0=$(date +%s)
python3 Benchmarks/populate.py $WORK/data $N 2>/dev/null
echo "populated in $(( $(date +%s) - t0 )) s"
KLIQ_WEBHOOK_SECRET=$SECRET $BIN serve --port 0 --data-dir $WORK/data --metrics-port off --admin-port 0 --log-level warning \
  --exec 'exit 1' --retry-attempts 1 > $WORK/out 2>&1 &
until grep -q "console at" $WORK/out 2>/dev/null; do sleep 0.1; done
PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' $WORK/out | grep -o '[0-9]*$')
ADMIN=http://127.0.0.1:$(grep -o 'console at http://127.0.0.1:[0-9]*' $WORK/out | grep -o '[0-9]*$')
for i in 1 2 3; do
  body="{\"id\":\"evt_dead_$i\",\"type\":\"visit.submitted\",\"tenantId\":\"t\",\"timestamp\":\"2026-04-28T12:00:00Z\",\"data\":{}}"
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac $SECRET | awk '{print $2}')
  curl -s -o /dev/null -X POST -H "X-Kliq-Signature: $sig" --data-binary "$body" http://127.0.0.1:$PORT/webhooks/kliq
done
sleep 1
MID=$((9000000000 + N / 2))
printf "| request | median ms | worst ms |\n|---|---|---|\n"
for path in "/" "/api/stats" "/events" "/api/events?limit=50" "/api/events?cursor=$((N / 2))&limit=50" "/events?type=visit.submitted" \
            "/events/evt_h$MID" "/api/events/evt_h$MID" "/events?state=dead" "/dead" "/jobs" "/api/jobs?limit=50" "/jobs/job_h$MID"; do
  curl -s -o /dev/null "$ADMIN$path"
  times=$(for i in 1 2 3 4 5 6 7; do curl -s -o /dev/null -w '%{time_total}\n' "$ADMIN$path"; done | sort -n)
  python3 -c "import sys; t=[float(x)*1000 for x in sys.argv[1].split()]; print('| \`%s\` | %.1f | %.1f |' % (sys.argv[2], t[len(t)//2], t[-1]))" "$times" "$path"
done
