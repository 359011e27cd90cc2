#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/FuzzTargets.swift) with AddressSanitizer and runs each for a
# fixed time over a seed corpus from Fixtures/. Prints executions and findings per target and exits 1
# when any target found something (crash inputs are left in .build-fuzz/findings/).
#
#   Fuzz/run.sh [SECONDS_PER_TARGET] [TARGET…]     (default 60 s, all targets)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(header envelope job storage-name)
scratch=.build-fuzz

echo "fuzz: building (sanitize=fuzzer,address) into $scratch"
swift build --scratch-path "$scratch" --product KliqWebhooksFuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld 2>&1 | grep -vE "Cannot export local symbol|^\[|CMakeLists|unhandled" || true
binary="$(swift build --scratch-path "$scratch" -Xswiftc -use-ld=lld --show-bin-path)/KliqWebhooksFuzz"
[ -x "$binary" ] || { echo "fuzz: build failed"; exit 2; }

status=0
mkdir -p "$scratch/findings"
printf '%-14s %10s %12s %8s %s\n' target seconds executions exec/s findings
for target in "${targets[@]}"; do
  corpus="$scratch/corpus/$target"
  mkdir -p "$corpus"
  case "$target" in
    header) awk '{print $1}' Fixtures/signatures.txt | while read -r sig; do printf '%s' "$sig" > "$corpus/seed-$sig"; done ;;
    storage-name) for id in evt_1 "../../etc/passwd" "a/b" ".hidden" "$(printf 'x%.0s' {1..250})"; do printf '%s' "$id" > "$corpus/seed-$(printf '%s' "$id" | sha256sum | cut -c1-16)"; done ;;
    *) cp Fixtures/*.json "$corpus/" ;;
  esac
  log="$scratch/$target.log"
  set +e
  KLIQ_FUZZ_TARGET=$target "$binary" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -artifact_prefix="$scratch/findings/$target-" "$corpus" > "$log" 2>&1
  code=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  found=$(ls "$scratch/findings" | grep -c "^$target-" || true)
  printf '%-14s %10s %12s %8s %s\n' "$target" "$seconds" "$runs" "$rate" "$found"
  if [ "$code" -ne 0 ] || [ "$found" -ne 0 ]; then
    status=1
    echo "fuzz: $target found something (exit $code); see $log and $scratch/findings/"
    tail -30 "$log"
  fi
done
exit $status
