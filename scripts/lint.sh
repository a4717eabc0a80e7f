#!/usr/bin/env bash
# The lint checks CI runs; run them locally before committing.
#   scripts/lint.sh          both
#   scripts/lint.sh fmt      rustfmt check only
#   scripts/lint.sh clippy   clippy only
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
if [ "$what" = all ] || [ "$what" = fmt ]; then
    cargo fmt --all -- --check
fi
if [ "$what" = all ] || [ "$what" = clippy ]; then
    cargo clippy --workspace --all-targets -- -D warnings
fi
