#!/usr/bin/env bash
# Checks the deployment files against the binary they run:
#   - deploy/pinion.service with `systemd-analyze verify` (ExecStart pointed at the built binary,
#     which verify requires to exist); any complaint fails;
#   - every flag its ExecStart passes is one `pinion live` accepts;
#   - deploy/Dockerfile with hadolint where it is installed, and its CMD runs the embedded replay.
# Usage: scripts/deploy-check.sh [PINION_BINARY]   (default: target/debug/pinion)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/debug/pinion}"
[ -x "$bin" ] || cargo build -q -p pinion-engine --bin pinion
bin="$(realpath "$bin")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

unit="$tmp/pinion.service"
sed "s|/usr/local/bin/pinion|$bin|" deploy/pinion.service > "$unit"
if command -v systemd-analyze >/dev/null 2>&1; then
    # The credentials file is an installation's own; verify checks the unit, not the host.
    sed -i 's|^EnvironmentFile=/|EnvironmentFile=-/|' "$unit"
    out="$(systemd-analyze verify "$unit" 2>&1 || true)"
    # Complaints about the unit name it; anything else is the host's own state (no systemd
    # running in a container), shown but not held against the unit.
    if grep -q "pinion.service" <<<"$out"; then
        echo "deploy-check: systemd-analyze verify complains:" >&2
        echo "$out" >&2
        exit 1
    fi
    [ -z "$out" ] || echo "deploy-check: (the host says) $out"
    echo "deploy-check: systemd unit verified"
else
    echo "deploy-check: systemd-analyze not installed; the unit is not verified"
fi

# The flags of ExecStart (continuation lines joined) against `pinion live --help`.
exec_line="$(sed -n '/^ExecStart=/,/[^\\]$/p' deploy/pinion.service | tr -d '\\\n')"
help="$("$bin" live --help)"
for flag in $(grep -o -- ' --[a-z-]*' <<<"$exec_line"); do
    if ! grep -q -- "$flag" <<<"$help"; then
        echo "deploy-check: ExecStart passes $flag, which pinion live does not take" >&2
        exit 1
    fi
done
echo "deploy-check: ExecStart's flags are pinion live's"

if command -v hadolint >/dev/null 2>&1; then
    hadolint deploy/Dockerfile
    echo "deploy-check: Dockerfile linted"
else
    echo "deploy-check: hadolint not installed; the Dockerfile is not linted"
fi
# The image's default command is the embedded replay: it must run clean.
cmd="$(sed -n 's/^CMD \["\(.*\)"\]$/\1/p' deploy/Dockerfile)"
[ "$cmd" = "replay" ] || { echo "deploy-check: unexpected CMD $cmd" >&2; exit 1; }
"$bin" replay > "$tmp/replay.txt" 2>&1 || { echo "deploy-check: the image's default command failed" >&2; tail "$tmp/replay.txt" >&2; exit 1; }
grep -q "net" "$tmp/replay.txt"
echo "deploy-check: PASS"
