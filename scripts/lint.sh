#!/usr/bin/env bash
# The lint checks CI runs; run them locally before committing.
#   scripts/lint.sh          all three
#   scripts/lint.sh fmt      rustfmt check only
#   scripts/lint.sh clippy   clippy only
#   scripts/lint.sh doc      the API docs build with no broken or private links
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
if [ "$what" = all ] || [ "$what" = fmt ]; then
    cargo fmt --all -- --check
fi
if [ "$what" = all ] || [ "$what" = clippy ]; then
    cargo clippy --workspace --all-targets -- -D warnings
fi
if [ "$what" = all ] || [ "$what" = doc ]; then
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
fi
