#!/usr/bin/env bash
# Runs the benchmarks with the host state printed first, so the figures carry their context.
# Every benchmark measures a baseline in the same run; quote medians, with the baseline beside them.
#   scripts/bench.sh            all benchmarks
#   scripts/bench.sh parse      one of: parse sbe book readers ring e2e wire order_encode tick_to_trade_wire backtest ops_cost strategies3
#                               tick_to_trade_wire
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/host-check.sh
echo
if [ $# -gt 0 ]; then
    cargo bench -p pinion-benches --bench "$1"
else
    cargo bench -p pinion-benches
fi
