#!/usr/bin/env bash
# Soak the live path: scripts/live-loopback.sh over and over, one seed after another (each seed
# puts the dropped diff, the reset and the rotation elsewhere), for MINUTES, then the counts. Not
# for CI: it is meant to run for a long time on a quiet machine.
#
#   scripts/live-soak.sh [MINUTES] [FIRST_SEED] [SECONDS_PER_RUN]   (defaults: 30, 1, 20)
#
# Exit 0 when every run passed. Each failed run's output is kept in target/live-soak/.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes="${1:-30}"
seed="${2:-1}"
per_run="${3:-20}"
out=target/live-soak
mkdir -p "$out"
end=$(( $(date +%s) + minutes * 60 ))
runs=0
passed=0
failed_seeds=()
while [ "$(date +%s)" -lt "$end" ]; do
    runs=$(( runs + 1 ))
    if scripts/live-loopback.sh "$per_run" "$seed" >"$out/seed-$seed.log" 2>&1; then
        passed=$(( passed + 1 ))
        rm -f "$out/seed-$seed.log"
    else
        failed_seeds+=("$seed")
    fi
    tail -n 1 "$out/seed-$seed.log" 2>/dev/null || echo "seed $seed: pass"
    seed=$(( seed + 1 ))
done
echo "live-soak: $runs runs, $passed passed, ${#failed_seeds[@]} failed${failed_seeds:+ (seeds ${failed_seeds[*]}; logs in $out)}"
[ "${#failed_seeds[@]}" -eq 0 ]
