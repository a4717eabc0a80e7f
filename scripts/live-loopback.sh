#!/usr/bin/env bash
# The live path end to end on loopback, over real TLS: the exchange simulator serves the synthetic
# Binance Spot market with seeded faults (a dropped diff, a connection reset, a serverShutdown
# that forces a rotation), `pinion live` runs against it, and the run passes only when every book
# ends `live` and equal, level by level and at the same update id, to the simulator's own book.
# Equal books after a reset and a rotation also mean no update was lost or applied twice.
#
#   scripts/live-loopback.sh [SECONDS] [SEED]     (defaults: 20 s, seed 7)
#   LIVE_LOOPBACK_PROFILE=dev scripts/live-loopback.sh 15 7    (the dev build; default release)
#
# Exit 0 on a pass, 1 on a mismatch or a failed run. The last line is a one-line summary.
# Needs curl and python3 (CI installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/loopback.sh
loopback_args live-loopback 12 "$@"
# LIVE_LOOPBACK_PROFILE=dev reuses the test build (CI has just built it); the default is release.
loopback_build "${LIVE_LOOPBACK_PROFILE:-release}"
loopback_scratch

# The market runs for all but the last 6 s of the session, which are left for the session to
# catch up after its faults; then it stays open, idle, with pings.
rate=4000
messages=$(( rate * (run_s - 6) ))
# Seeded fault positions: a diff dropped early, the first connection reset a few seconds in,
# and the reconnected one told to shut down (a make-before-break rotation).
drop_at=$(( 400 + seed % 300 ))
rst_after=$(( 6000 + (seed * 977) % 4000 ))
shutdown_ms=$(( 2000 + (seed * 131) % 1000 ))
faults="drop:btcusdt@depth@100ms:${drop_at},rst:${rst_after}#0,shutdown:${shutdown_ms}:1000#1"

loopback_start_sim live-loopback --synthetic --messages "$messages" --rate "$rate" \
    --faults "$faults" --seed "$seed" --ping-interval-ms 1000

set +e
"$bin/pinion" live --config configs/live-binance-spot.toml \
    --endpoint "wss://localhost:${port}/stream" --rest-endpoint "https://localhost:${port}" \
    --ca-file "$dir/cert.pem" --duration "$run_s" --no-progress -p 2 -w park \
    --books-out "$dir/books.json" --report-json "$dir/report.json" \
    --set 'live.symbols=["BTCUSDT"]' --set "live.exchange_info_cache=\"$dir/exchangeinfo.json\"" \
    --set live.read_idle_timeout_ms=3000 ${LIVE_LOOPBACK_SET:-} >"$dir/pinion.out" 2>"$dir/pinion.err"
rc=$?
set -e
cat "$dir/pinion.out"
grep -v '^pinion live:' "$dir/pinion.err" | grep -v '^  ' >&2 || true
if [ ! -s "$dir/books.json" ]; then
    echo "live-loopback: pinion live failed (exit $rc):" >&2
    cat "$dir/pinion.err" >&2
    echo "live-loopback: FAIL (pinion exit $rc)"
    exit 1
fi

curl -sf --cacert "$dir/cert.pem" "https://localhost:${port}/sim/book?symbol=BTCUSDT" >"$dir/truth.json"
curl -sf --cacert "$dir/cert.pem" "https://localhost:${port}/sim/stats" >"$dir/stats.json"

python3 - "$dir/books.json" "$dir/truth.json" "$dir/stats.json" "$dir/report.json" "$rc" <<'PY'
import json, sys

books = json.load(open(sys.argv[1]))
truth = json.load(open(sys.argv[2]))
stats = json.load(open(sys.argv[3]))
report = json.load(open(sys.argv[4]))
rc = int(sys.argv[5])

book = next((b for b in books if b["symbol"] == truth["symbol"]), None)
problems = []
if book is None:
    problems.append("no book for " + truth["symbol"])
else:
    if book["state"] != "live":
        problems.append("the book ended " + book["state"])
    if book["last_update_id"] != truth["lastUpdateId"]:
        problems.append("update id %d, the venue's %d" % (book["last_update_id"], truth["lastUpdateId"]))
    for side in ("bids", "asks"):
        mine = [tuple(l) for l in book[side]]
        theirs = [tuple(l) for l in truth[side]]
        if mine != theirs:
            first = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
            problems.append("%s differ from level %d (%d levels, the venue's %d)" % (side, first, len(mine), len(theirs)))
if rc != 0:
    problems.append("pinion live exited %d" % rc)
for fault in ("fault_drops", "fault_resets", "fault_shutdowns"):
    if stats.get(fault, 0) < 1:
        problems.append("the simulator applied no %s" % fault)

live = report.get("live", {})
conn = live.get("conn0", "")
snaps = live.get("snapshots", "")
def field(text, name):
    for part in text.split():
        if part.startswith(name + "="):
            return part.split("=", 1)[1]
    return "?"

summary = "update_id=%s levels=%d/%d reconnects=%s rotations=%s snapshots=%s drops=%d resets=%d shutdowns=%d frames=%s" % (
    book["last_update_id"] if book else "-",
    len(book["bids"]) if book else 0,
    len(book["asks"]) if book else 0,
    field(conn, "reconnects"),
    field(snaps, "rotations"),
    field(snaps, "fetched"),
    stats.get("fault_drops", 0),
    stats.get("fault_resets", 0),
    stats.get("fault_shutdowns", 0),
    field(conn, "frames"),
)
if problems:
    for p in problems:
        print("live-loopback: " + p, file=sys.stderr)
    print("live-loopback: FAIL " + summary)
    sys.exit(1)
print("live-loopback: PASS books equal to the venue's; " + summary)
PY
