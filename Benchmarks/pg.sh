#!/usr/bin/env bash
# The PostgreSQL store under load, side by side with the files store and a reference receiver, on one
# machine, alternating for ROUNDS rounds (data — files and the database — on a freshly made,
# loop-mounted ext4 file system, as in ab.sh):
#   files    one serve on the file store
#   pg1      one serve on PostgreSQL
#   pg3      three serve replicas on PostgreSQL, each loaded by its own wrk with a third of the
#            connections and of the deliveries (what a load balancer in front of them would do)
#   python   Benchmarks/pg_reference.py: verify, INSERT … ON CONFLICT + job upsert, commit (psycopg)
# Every delivery is new (no duplicates), no handlers. For each run: 2xx answers/s, p99 latency (the
# worst wrk's), CPU per 2xx of the receiver process(es) and of PostgreSQL's, and the two together.
#
# usage: Benchmarks/pg.sh RELEASE_BINARY [DURATION=15s] [CONNECTIONS=48] [ROUNDS=2]
# needs: root (mount, initdb as postgres), wrk, PostgreSQL server binaries, python3 with psycopg.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "$1"); DURATION=${2:-15s}; CONNECTIONS=${3:-48}; ROUNDS=${4:-2}
SECRET=whsec_bench_secret
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
python3 -c 'import psycopg' 2>/dev/null || python3 -m pip install -q "psycopg[binary]"
WORK=$(mktemp -d); MNT="$WORK/mnt"; mkdir -p "$MNT"
truncate -s 6G "$WORK/fs.img"; mkfs.ext4 -q -F "$WORK/fs.img"; mount -o loop "$WORK/fs.img" "$MNT"
cleanup() { kill $(jobs -p) 2>/dev/null || true; sleep 1; .ci/postgres.sh stop "$MNT/pg" || true; umount "$MNT" 2>/dev/null || umount -l "$MNT"; rm -rf "$WORK"; }
trap cleanup EXIT
chmod 755 "$WORK" "$MNT"   # the postgres user must reach its data directory
URL=$(.ci/postgres.sh start "$MNT/pg")
python3 Benchmarks/gen_deliveries.py "$WORK/all.tsv" 240000 --secret "$SECRET" >/dev/null
cpu_of() { local total=0 t; for pid in "$@"; do t=$(awk '{print $14 + $15}' /proc/$pid/stat 2>/dev/null || echo 0); total=$((total + t)); done; echo $total; }
# PostgreSQL's CPU so far: the postmaster's own and its reaped children's (cutime, cstime), plus its live
# children's — a backend that ends moves its time from the second sum to the first, so differences are exact.
postgres_cpu() {
  local pm; pm=$(head -1 "$MNT/pg/data/postmaster.pid")
  local total; total=$(awk '{print $14 + $15 + $16 + $17}' /proc/$pm/stat)
  for pid in $(ps --ppid "$pm" -o pid=); do total=$((total + $(awk '{print $14 + $15}' /proc/$pid/stat 2>/dev/null || echo 0))); done
  echo "total $total"
}
wait_port() { for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
run=0

bench() {  # bench LABEL
  local label=$1 pids=() ports=() n=1 schema="b_${1}_$RANDOM"
  run=$((run + 1))
  case $label in
    files) KLIQ_WEBHOOK_SECRET=$SECRET KLIQ_METRICS_PORT=off KLIQ_ADMIN_PORT=off "$BIN" serve --store files --data-dir "$MNT/files-$run" --port 18201 --log-level warning >/dev/null 2>"$WORK/err1" &
           pids=($!); ports=(18201) ;;
    pg1)   KLIQ_WEBHOOK_SECRET=$SECRET KLIQ_METRICS_PORT=off KLIQ_ADMIN_PORT=off "$BIN" serve --database-url "$URL" --database-schema "$schema" --port 18201 --log-level warning >/dev/null 2>"$WORK/err1" &
           pids=($!); ports=(18201) ;;
    pg3)   for i in 1 2 3; do
             KLIQ_WEBHOOK_SECRET=$SECRET KLIQ_METRICS_PORT=off KLIQ_ADMIN_PORT=off "$BIN" serve --database-url "$URL" --database-schema "$schema" --port $((18200 + i)) --log-level warning >/dev/null 2>"$WORK/err$i" &
             pids+=($!); ports+=($((18200 + i)))
             [ $i = 1 ] && { wait_port 18201; sleep 1; }   # the first migrates the schema
           done; n=3 ;;
    python) KLIQ_WEBHOOK_SECRET=$SECRET python3 Benchmarks/pg_reference.py 18201 "$URL" "$schema" 2>"$WORK/err1" &
           pids=($!); ports=(18201) ;;
  esac
  for port in "${ports[@]}"; do wait_port "$port"; done
  sleep 1
  # Each wrk gets its own slice of the deliveries (every run stores into a fresh schema or directory,
  # so none is a duplicate).
  for i in $(seq 1 $n); do awk -v n=$n -v i=$i 'NR % n == i - 1' "$WORK/all.tsv" > "$WORK/slice$i.tsv"; done
  local before_app before_pg
  before_app=$(cpu_of "${pids[@]}"); postgres_cpu > "$WORK/pg.before"
  local wrks=()
  for i in $(seq 1 $n); do
    DELIVERIES="$WORK/slice$i.tsv" WRK_THREADS=2 wrk -t2 -c$((CONNECTIONS / n)) -d"$DURATION" --latency -s Benchmarks/kliq.lua "http://127.0.0.1:${ports[$((i - 1))]}" >"$WORK/wrk$i" 2>&1 &
    wrks+=($!)
  done
  wait "${wrks[@]}"
  local after_app; after_app=$(cpu_of "${pids[@]}"); postgres_cpu > "$WORK/pg.after"
  kill -TERM "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
  python3 - "$label" "$n" "$WORK" "$before_app" "$after_app" <<'PY'
import re, sys
label, n, work, before, after = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
ok = 0; seconds = 0.0; p99 = 0.0; non2xx = 0
for i in range(1, n + 1):
    text = open(f"{work}/wrk{i}").read()
    total = int(re.search(r"(\d+) requests in", text).group(1))
    bad = int((re.search(r"Non-2xx or 3xx responses: (\d+)", text) or [0, 0])[1])
    ok += total - bad; non2xx += bad
    seconds = max(seconds, float(re.search(r"requests in ([\d.]+)s", text).group(1)))
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", text).groups()
    p99 = max(p99, float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit])
pg_ticks = int(open(f"{work}/pg.after").read().split()[1]) - int(open(f"{work}/pg.before").read().split()[1])
app = (after - before) * 10000 / max(ok, 1); pg = pg_ticks * 10000 / max(ok, 1)
print(f"{label:7} {ok / seconds:8.0f} 2xx/s  p99 {p99:7.1f} ms  CPU/2xx: receiver {app:5.0f} µs + PostgreSQL {pg:5.0f} µs = {app + pg:5.0f} µs  non-2xx {non2xx}")
PY
  sleep 2
}

echo "binary: $BIN"
echo "command: Benchmarks/pg.sh $* ($(nproc) cores, PostgreSQL $(psql --version | awk '{print $3}'), data on a fresh loop-mounted ext4)"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round"
  for label in files pg1 pg3 python; do bench "$label"; done
done
