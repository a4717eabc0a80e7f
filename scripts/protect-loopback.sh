#!/usr/bin/env bash
# Protective orders that outlive the engine, end to end on loopback over real TLS: the exchange
# simulator serves the synthetic Binance Spot market and its WS API, and `pinion live --trade`
# trades against it with `[strategy] protect = "exchange"` (a stop-loss and a take-profit, kept
# on the exchange as an OCO sized to the position) and a journal. The run passes only when all
# of these hold:
#   - once the engine has a position, its native bracket rests at the exchange (a STOP_LOSS and
#     a TAKE_PROFIT of pinion's, one list, on the closing side);
#   - the engine is killed with SIGKILL; the simulator's market is moved through the stop
#     (`/sim/print`, a trade print far through it): the stop fills at the exchange with the
#     engine dead, and the take-profit expires with it;
#   - the engine is started again on its journal: it takes in the bracket's orders and the fill
#     (the stop Filled and the take-profit Expired in its account, as at the exchange), places
#     no order twice, never has two brackets resting at once, and its position equals the net
#     of every trade at the exchange;
#   - the restarted run ends cleanly (exit 0) with nothing left open at the exchange.
#
#   scripts/protect-loopback.sh [SECONDS] [SEED]   (defaults: 20 s, seed 7; the restarted run
#                                                   trades about SECONDS)
#   PROTECT_LOOPBACK_PROFILE=dev scripts/protect-loopback.sh 20   (the dev build; default release)
#
# Exit 0 on a pass, 1 otherwise. The last line is a one-line summary. Needs curl and python3.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/loopback.sh
loopback_args protect-loopback 8 "$@"
for tool in curl python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "protect-loopback: $tool is needed" >&2
        echo "protect-loopback: FAIL (no $tool)"
        exit 1
    fi
done
loopback_build "${PROTECT_LOOPBACK_PROFILE:-release}"
loopback_scratch

problems=()
fail() { problems+=("$1"); echo "protect-loopback: $1" >&2; }

engine_pid=""
protect_cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -z "${summarised:-}" ]; then
        echo "protect-loopback: FAIL (stopped at line ${failed_line:-?}, exit $rc)"
    fi
    if [ -n "$engine_pid" ]; then
        kill "$engine_pid" 2>/dev/null || true
        wait "$engine_pid" 2>/dev/null || true
    fi
    loopback_cleanup
}
trap protect_cleanup EXIT
trap 'failed_line=$LINENO' ERR

"$bin/pinion-exchange-sim" keygen --private-out "$dir/key.pem" --public-out "$dir/pub.pem"
api_key="pinionProtect$(printf '%08d' "$seed")"

rate=2000
messages=$(( rate * (2 * run_s + 90) ))
loopback_start_sim protect-loopback --synthetic --messages "$messages" --rate "$rate" \
    --seed "$seed" --ping-interval-ms 1000 --ws-api-key "$api_key" \
    --ws-api-ed25519-pub "$dir/pub.pem" --ws-api-balance BTC=10 --ws-api-balance USDT=1000000
sim="https://localhost:${port}"

# The shipped Spot config, with exits 2 % either side kept on the exchange, and a journal.
{
    cat configs/live-binance-spot.toml
    cat <<EOF

[protection]
stop_loss_bps = 200
take_profit_bps = 200

[journal]
path = "${dir}/journal"
EOF
} >"$dir/protect.toml"

# start_engine N DURATION: `pinion live --trade` in the background, as run N.
start_engine() {
    local n="$1" duration="$2"
    PINION_BINANCE_API_KEY="$api_key" PINION_BINANCE_SECRET="$(cat "$dir/key.pem")" \
    "$bin/pinion" live --config "$dir/protect.toml" --trade \
        --endpoint "wss://localhost:${port}/stream" --rest-endpoint "$sim" \
        --ws-api-endpoint "wss://localhost:${port}/ws-api/v3" \
        --ca-file "$dir/cert.pem" --duration "$duration" --no-progress -p 2 -w park \
        --account-out "$dir/account$n.json" --report-json "$dir/report$n.json" \
        --set 'live.symbols=["BTCUSDT"]' --set "live.exchange_info_cache=\"$dir/exchangeinfo.json\"" \
        --set live.orders.query_after_ms=1500 --set live.orders.recv_window_ms=5000 \
        --set risk.orders_per_second=3 --set risk.order_burst=5 \
        --set 'strategy.protect="exchange"' \
        ${PROTECT_LOOPBACK_SET:-} >"$dir/pinion$n.out" 2>"$dir/pinion$n.err" &
    engine_pid=$!
}

sim_account() {
    curl -sf --cacert "$dir/cert.pem" "$sim/sim/account" >"$1"
}

# The open protective orders of pinion at the exchange in account file $1: "TYPE SIDE QTY" lines.
protective_open() {
    python3 - "$1" <<'PY'
import json, sys
for o in json.load(open(sys.argv[1]))["orders"]:
    if o["type"] in ("STOP_LOSS", "TAKE_PROFIT") and o["status"] == "NEW":
        print(o["type"], o["side"], o["origQty"], o["clientOrderId"])
PY
}

# Run 1: until its bracket rests at the exchange, then SIGKILL (nothing is cancelled; the
# bracket stays at the exchange). A kill that lands inside a resize (the old list cancelled,
# the new one not yet sent) or while the position is flat leaves no bracket: the run is
# started again on its journal and killed again, up to three times.
bracket=""
for attempt in 1 2 3; do
    start_engine 1 $(( run_s * 10 ))
    seen=""
    for _ in $(seq 1 $(( run_s * 10 ))); do
        if ! kill -0 "$engine_pid" 2>/dev/null; then
            break
        fi
        sim_account "$dir/sim-run1.json" || true
        seen="$(protective_open "$dir/sim-run1.json" 2>/dev/null || true)"
        if [ "$(printf '%s\n' "$seen" | grep -c '^STOP_LOSS ')" = 1 ] &&
           [ "$(printf '%s\n' "$seen" | grep -c '^TAKE_PROFIT ')" = 1 ]; then
            break
        fi
        seen=""
        sleep 0.1
    done
    if [ -z "$seen" ]; then
        cat "$dir/pinion1.err" >&2 || true
        summarised=1
        echo "protect-loopback: FAIL (no native bracket rested within ${run_s} s of run 1)"
        exit 1
    fi
    kill -KILL "$engine_pid"
    wait "$engine_pid" 2>/dev/null || true
    engine_pid=""
    sleep 0.5
    sim_account "$dir/sim-killed.json"
    bracket="$(protective_open "$dir/sim-killed.json")"
    if [ "$(printf '%s\n' "$bracket" | grep -c '^STOP_LOSS ')" = 1 ] &&
       [ "$(printf '%s\n' "$bracket" | grep -c '^TAKE_PROFIT ')" = 1 ]; then
        break
    fi
    echo "protect-loopback: attempt ${attempt}: no single bracket resting at the kill ($(printf '%s' "$bracket" | tr '\n' ';')); again" >&2
    bracket=""
done
if [ -z "$bracket" ]; then
    summarised=1
    echo "protect-loopback: FAIL (three kills found no single bracket resting at the exchange)"
    exit 1
fi
echo "protect-loopback: resting at the kill: $(printf '%s' "$bracket" | tr '\n' ';')"
stop_side="$(printf '%s\n' "$bracket" | awk '$1 == "STOP_LOSS" {print $2}')"

# Move the market through the stop with the engine dead: a print 10 % through the touch.
book="$(curl -sf --cacert "$dir/cert.pem" "$sim/sim/book?symbol=BTCUSDT&depth=1")"
price="$(python3 - "$stop_side" "$book" <<'PY'
import json, sys
from decimal import Decimal
side, book = sys.argv[1], json.loads(sys.argv[2])
def top(levels):
    return Decimal(levels[0][0] if isinstance(levels[0], list) else levels[0]["price"])
if side == "SELL":
    print((top(book["bids"]) * Decimal("0.9")).quantize(Decimal("0.01")))
else:
    print((top(book["asks"]) * Decimal("1.1")).quantize(Decimal("0.01")))
PY
)"
curl -sf --cacert "$dir/cert.pem" "$sim/sim/print?symbol=BTCUSDT&price=${price}" >/dev/null ||
    fail "the simulator refused the print at ${price}"
sleep 0.5
sim_account "$dir/sim-printed.json"
stop_state="$(python3 - "$dir/sim-printed.json" "$bracket" <<'PY'
import json, sys
ids = {line.split()[0]: line.split()[3] for line in sys.argv[2].splitlines() if line.strip()}
orders = {o["clientOrderId"]: o for o in json.load(open(sys.argv[1]))["orders"]}
print(orders.get(ids["STOP_LOSS"], {}).get("status", "?"), orders.get(ids["TAKE_PROFIT"], {}).get("status", "?"))
PY
)"
[ "$stop_state" = "FILLED EXPIRED" ] ||
    fail "after the print at ${price} the stop and take-profit are ${stop_state}, not FILLED EXPIRED"

# Run 2 on the journal: it takes in the fill and the expired leg.
start_engine 2 "$run_s"
max_brackets=0
while kill -0 "$engine_pid" 2>/dev/null; do
    if sim_account "$dir/sim-run2.json" 2>/dev/null; then
        n="$(protective_open "$dir/sim-run2.json" | grep -c '^STOP_LOSS ' || true)"
        [ "$n" -gt "$max_brackets" ] && max_brackets="$n"
    fi
    sleep 0.2
done
set +e
wait "$engine_pid"
rc=$?
set -e
engine_pid=""
cat "$dir/pinion2.out"
if [ ! -s "$dir/account2.json" ] || [ ! -s "$dir/report2.json" ]; then
    cat "$dir/pinion2.err" >&2
    summarised=1
    echo "protect-loopback: FAIL (run 2 wrote no account or report, exit $rc)"
    exit 1
fi
[ "$max_brackets" -le 1 ] || fail "run 2 had ${max_brackets} stops resting at once"
sim_account "$dir/sim-end.json"

printf '%s\n' "${problems[@]}" >"$dir/problems.txt"
summarised=1
python3 - "$dir" "$rc" "$bracket" "$price" <<'PY'
import json, sys
from decimal import Decimal

d, rc, bracket, price = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
problems = [p for p in open(d + "/problems.txt").read().splitlines() if p]
sim = json.load(open(d + "/sim-end.json"))
ours = json.load(open(d + "/account2.json"))
report = json.load(open(d + "/report2.json"))
if rc != 0:
    problems.append("run 2 exited %d" % rc)
account = ours[0] if ours else {"orders": []}
mine = {o["client_order_id"]: o for o in account["orders"]}
legs = {line.split()[0]: line.split()[3] for line in bracket.splitlines() if line.strip()}
for kind, want in (("STOP_LOSS", "Filled"), ("TAKE_PROFIT", "Expired")):
    m = mine.get(legs[kind])
    if m is None:
        problems.append("the restarted engine did not take in the %s %s" % (kind, legs[kind]))
    elif m["state"] != want:
        problems.append("the restarted engine has the %s %s, not %s" % (kind, m["state"], want))

seen = set()
for o in sim["orders"]:
    if o["clientOrderId"] in seen:
        problems.append("%s placed twice" % o["clientOrderId"])
    seen.add(o["clientOrderId"])
    if o["status"] in ("NEW", "PARTIALLY_FILLED"):
        problems.append("%s %s is still open at the exchange at the end" % (o["type"], o["clientOrderId"]))

def net(trades):
    return sum((Decimal(t["qty"]) if t["isBuyer"] else -Decimal(t["qty"])) for t in trades)
trading = report.get("trading") or [{}]
position = Decimal(trading[0].get("position", "NaN"))
if position != net(sim["trades"]):
    problems.append("position %s, the exchange's trades net %s" % (position, net(sim["trades"])))
protection = trading[0].get("protection")
if protection != "exchange":
    problems.append("the report says protection %r, not 'exchange'" % protection)
guard = account.get("protection") or {}
placed = guard.get("placed", 0)

stops = [o for o in sim["orders"] if o["type"] == "STOP_LOSS"]
summary = ("bracket rested (%s), stop filled at the exchange with the engine dead (print at %s), "
           "restarted engine took it in; %d stops placed in all (%d by the restarted run), %d trades, "
           "position %s equal to the exchange's") % (
    "; ".join(bracket.splitlines()), price, len(stops), placed, len(sim["trades"]), format(position, "f"))
if problems:
    for p in problems:
        print("protect-loopback: " + p, file=sys.stderr)
    print("protect-loopback: FAIL (%d problems) %s" % (len(problems), summary))
    sys.exit(1)
print("protect-loopback: PASS " + summary)
PY
