#!/usr/bin/env bash
# Records the exchange simulator's loopback traffic with tcpdump and checks that replaying the
# capture gives back the recording's frames, byte for byte and in order.
#
#   scripts/capture-loopback.sh [RECORDING] [OUT_DIR]
#
# RECORDING defaults to the real Binance Spot recording in ../shared/data; OUT_DIR (default: a
# new temporary directory) receives capture.pcap, snapshot.json and the logs. Needs tcpdump and
# the right to capture on `lo` (root or CAP_NET_RAW).
#
# Flow: build pinion-exchange-sim; serve RECORDING on 127.0.0.1 (a free port); start tcpdump on
# lo for that port in immediate mode (otherwise libpcap holds the session's tail in its ring and
# stopping loses it); receive the whole session with the simulator's own client (which also
# fetches the REST snapshot, as a Binance client would); stop tcpdump with SIGINT; then
# `pinion-exchange-sim compare` replays the capture through pinion's pcap reader and compares.
#
# The capture can then go through the engine like any recording:
#   pinion replay --input OUT_DIR/capture.pcap
# (this script's own check does not depend on the engine's CLI).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
input=${1:-"$root/../shared/data/binance/spot-btcusdt-20240808.hbt.gz"}
out=${2:-$(mktemp -d -t pinion-capture.XXXXXX)}
mkdir -p "$out"
# tcpdump drops root and writes as its own user.
chmod a+rwx "$out"

[[ -f "$input" ]] || { echo "no such recording: $input" >&2; exit 2; }
command -v tcpdump >/dev/null || { echo "tcpdump is not installed (apt-get install tcpdump)" >&2; exit 2; }

echo "building pinion-exchange-sim" >&2
cargo build --quiet --manifest-path "$root/Cargo.toml" -p pinion-exchange-sim --bin pinion-exchange-sim
sim="$root/target/debug/pinion-exchange-sim"

sim_pid=
dump_pid=
cleanup() {
    [[ -n "$dump_pid" ]] && kill -INT "$dump_pid" 2>/dev/null || true
    [[ -n "$sim_pid" ]] && kill "$sim_pid" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

# Wait up to 10 s for a line matching $2 in file $1.
wait_for_line() {
    for _ in $(seq 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "timed out waiting for '$2' in $1:" >&2
    cat "$1" >&2
    return 1
}

"$sim" --input "$input" --listen 127.0.0.1:0 >"$out/sim.log" 2>&1 &
sim_pid=$!
wait_for_line "$out/sim.log" '^listening '
addr=$(sed -n 's/^listening //p' "$out/sim.log")
port=${addr##*:}
echo "simulator on $addr" >&2

tcpdump -i lo --immediate-mode -U -n -s 0 -B 16384 -w "$out/capture.pcap" tcp port "$port" \
    >"$out/tcpdump.log" 2>&1 &
dump_pid=$!
wait_for_line "$out/tcpdump.log" 'listening on'

"$sim" receive --addr "$addr" --path /stream --snapshot BTCUSDT --snapshot-out "$out/snapshot.json"

# Let the last packets reach the file, then stop the capture cleanly.
sleep 1
kill -INT "$dump_pid"
wait "$dump_pid" || true
dump_pid=
cat "$out/tcpdump.log" >&2
if ! grep -q '^0 packets dropped by kernel' "$out/tcpdump.log"; then
    echo "the kernel dropped packets: the capture is incomplete" >&2
    exit 1
fi
kill "$sim_pid"
wait "$sim_pid" 2>/dev/null || true
sim_pid=

"$sim" compare --input "$input" --capture "$out/capture.pcap" --port "$port"
echo "capture: $out/capture.pcap (replay it with: pinion replay --input $out/capture.pcap)"
