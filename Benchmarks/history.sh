#!/usr/bin/env bash
# History: start-up of `serve` on a data directory holding N stored events (Benchmarks/populate.py), and
# its throughput there against empty directories run before and after it (wrk -c64 -d10s each), on a
# freshly made ext4 image with room for the inodes. CPU per delivery = utime+stime / 2xx.
#
# usage: Benchmarks/history.sh RELEASE_KLIQ_WEBHOOKS [N=1000000]   (root: it mounts the image)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "$1"); N=${2:-1000000}
SECRET=whsec_bench_secret; PORT=18096
WORK=$(mktemp -d); MNT=$WORK/mnt; mkdir -p $MNT
truncate -s 12G $WORK/fs.img; mkfs.ext4 -q -F -N 2500000 $WORK/fs.img; mount -o loop $WORK/fs.img $MNT
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 1; umount $MNT || umount -l $MNT; rm -rf $WORK' EXIT
python3 Benchmarks/gen_deliveries.py $WORK/d.tsv 120000 --secret $SECRET >/dev/null
echo "populating $N events…"; t0=$(date +%s)
python3 Benchmarks/populate.py $MNT/full $N 2>/dev/null
echo "populated in $(( $(date +%s) - t0 )) s"; sync
run() {
  local dir=$1 label=$2
  local start=$(date +%s%N)
  KLIQ_WEBHOOK_SECRET=$SECRET KLIQ_METRICS_PORT=off KLIQ_ADMIN_PORT=off $BIN serve --port $PORT --data-dir $dir --log-level warning > $WORK/out 2>&1 &
  local pid=$!
  until (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do sleep 0.01; done
  local up=$(( ($(date +%s%N) - start) / 1000000 ))
  local before=$(awk '{print $14+$15}' /proc/$pid/stat)
  DELIVERIES=$WORK/d.tsv WRK_THREADS=2 wrk -t2 -c64 -d10s -s Benchmarks/kliq.lua http://127.0.0.1:$PORT > $WORK/wrk 2>&1
  local after=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill -TERM $pid; wait $pid || true
  python3 -c "
import re; t=open('$WORK/wrk').read(); n=int(re.search(r'(\d+) requests in',t).group(1)); s=float(re.search(r'requests in ([\d.]+)s',t).group(1))
bad=int((re.search(r'Non-2xx or 3xx responses: (\d+)',t) or [0,0])[1]); ok=n-bad
print('$label: start-up $up ms, %.0f 2xx/s, %.0f us CPU/2xx, non-2xx %d' % (ok/s, ($after-$before)*10000/max(ok,1), bad))"
}
mkdir -p $MNT/e1 $MNT/e2
run $MNT/e1 empty; run $MNT/full full; run $MNT/e2 "empty again"
