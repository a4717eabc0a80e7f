#!/usr/bin/env bash
# Order entry end to end on loopback, over real TLS: the exchange simulator serves the synthetic
# Binance Spot market and its WS API with seeded order faults (an order answered -1007 but
# executed, one answered -1007 and not executed, a 429, a connection reset right after an order
# was read), `pinion live --trade` trades against it with an Ed25519 key from its environment,
# and the run passes only when pinion's orders, fills, balances and position equal the
# simulator's account at the end:
#   - every order the simulator has, pinion knows, with the same filled quantity and state;
#   - every order pinion sent that the simulator never had ended refused (never unknown);
#   - no client order id was placed twice;
#   - every balance is equal, free and locked;
#   - the strategy's position equals the net of the simulator's trades.
#
#   scripts/trade-loopback.sh [SECONDS] [SEED]     (defaults: 20 s, seed 7)
#   TRADE_LOOPBACK_PROFILE=dev scripts/trade-loopback.sh 12 7    (the dev build; default release)
#
# Exit 0 on a pass, 1 on a mismatch or a failed run. The last line is a one-line summary.
# Needs curl and python3 (CI installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/loopback.sh
loopback_args trade-loopback 10 "$@"
loopback_build "${TRADE_LOOPBACK_PROFILE:-release}"
loopback_scratch

"$bin/pinion-exchange-sim" keygen --private-out "$dir/key.pem" --public-out "$dir/pub.pem"
api_key="pinionLoopback$(printf '%08d' "$seed")"

# Seeded order faults, counted in order.place requests from 1, spread over the first dozen
# orders so that a short run meets all of them.
k1=$(( 2 + seed % 3 ))
k2=$(( k1 + 2 + seed % 2 ))
k3=$(( k2 + 2 ))
k4=$(( k3 + 2 + seed % 3 ))
faults="o1007:${k1},o1007x:${k2},o429:${k3},oreset:${k4}"

# The market runs for the whole session; the strategy trades on it.
rate=2000
messages=$(( rate * (run_s + 10) ))
loopback_start_sim trade-loopback --synthetic --messages "$messages" --rate "$rate" \
    --seed "$seed" --ping-interval-ms 1000 --ws-api-key "$api_key" \
    --ws-api-ed25519-pub "$dir/pub.pem" --ws-api-balance BTC=10 --ws-api-balance USDT=1000000 \
    --order-faults "$faults"

# Orders paced under the venue's 50 per 10 s; unknown outcomes asked about after 1.5 s (the
# simulator acts on a request at once, so nothing is gained by waiting the venue's 10 s).
set +e
PINION_BINANCE_API_KEY="$api_key" PINION_BINANCE_SECRET="$(cat "$dir/key.pem")" \
"$bin/pinion" live --config configs/live-binance-spot.toml --trade \
    --endpoint "wss://localhost:${port}/stream" --rest-endpoint "https://localhost:${port}" \
    --ws-api-endpoint "wss://localhost:${port}/ws-api/v3" \
    --ca-file "$dir/cert.pem" --duration "$run_s" --no-progress -p 2 -w park \
    --account-out "$dir/account.json" --report-json "$dir/report.json" \
    --set 'live.symbols=["BTCUSDT"]' --set "live.exchange_info_cache=\"$dir/exchangeinfo.json\"" \
    --set live.orders.query_after_ms=1500 --set live.orders.recv_window_ms=5000 \
    --set risk.orders_per_second=3 --set risk.order_burst=5 \
    ${TRADE_LOOPBACK_SET:-} >"$dir/pinion.out" 2>"$dir/pinion.err"
rc=$?
set -e
cat "$dir/pinion.out"
grep -v '^pinion ' "$dir/pinion.err" | grep -v '^  ' >&2 || true
if [ ! -s "$dir/account.json" ]; then
    echo "trade-loopback: pinion live --trade failed (exit $rc):" >&2
    cat "$dir/pinion.err" >&2
    echo "trade-loopback: FAIL (pinion exit $rc)"
    exit 1
fi

curl -sf --cacert "$dir/cert.pem" "https://localhost:${port}/sim/account" >"$dir/sim-account.json"

python3 - "$dir/account.json" "$dir/sim-account.json" "$dir/report.json" "$rc" <<'PY'
import json, sys
from decimal import Decimal

ours = json.load(open(sys.argv[1]))
sim = json.load(open(sys.argv[2]))
report = json.load(open(sys.argv[3]))
rc = int(sys.argv[4])

problems = []
if rc != 0:
    problems.append("pinion live --trade exited %d" % rc)
account = ours[0] if ours else {"orders": [], "balances": [], "session": {}, "orders_table": {}}
mine = {o["client_order_id"]: o for o in account["orders"]}
state_for = {"FILLED": "Filled", "CANCELED": "Canceled", "EXPIRED": "Expired",
             "EXPIRED_IN_MATCH": "Expired", "PARTIALLY_FILLED": "PartiallyFilled", "NEW": "New"}
seen = set()
for o in sim["orders"]:
    cid = o["clientOrderId"]
    if cid in seen:
        problems.append("%s placed twice" % cid)
    seen.add(cid)
    m = mine.get(cid)
    if m is None:
        problems.append("the exchange has %s, pinion does not" % cid)
        continue
    if Decimal(m["filled"]) != Decimal(o["executedQty"]):
        problems.append("%s filled %s, the exchange says %s" % (cid, m["filled"], o["executedQty"]))
    if m["state"] != state_for.get(o["status"], "?"):
        problems.append("%s is %s, the exchange says %s" % (cid, m["state"], o["status"]))
for cid, m in mine.items():
    if cid not in seen and not m["state"].startswith("Rejected"):
        problems.append("%s never reached the exchange, yet pinion has it %s" % (cid, m["state"]))
balances = {b["asset"]: b for b in account["balances"]}
for b in sim["balances"]:
    m = balances.get(b["asset"])
    if m is None:
        problems.append("no balance of %s" % b["asset"])
    elif Decimal(m["free"]) != Decimal(b["free"]) or Decimal(m["locked"]) != Decimal(b["locked"]):
        problems.append("%s %s/%s, the exchange says %s/%s" % (b["asset"], m["free"], m["locked"], b["free"], b["locked"]))
net = sum((Decimal(t["qty"]) if t["isBuyer"] else -Decimal(t["qty"])) for t in sim["trades"])
trading = report.get("trading") or [{}]
position = Decimal(trading[0].get("position", "NaN"))
if position != net:
    problems.append("position %s, the exchange's trades net %s" % (position, net))
session = account.get("session", {})
table = account.get("orders_table", {})
if not sim["orders"]:
    problems.append("no order reached the exchange")
if session.get("disconnects", 0) < 1:
    problems.append("the reset fault was not met (no disconnect)")

summary = "orders=%d trades=%d position=%s unknown=%s reconnects=%s rate_limited=%s status_queries=%s not_connected=%s" % (
    len(sim["orders"]), len(sim["trades"]), position, table.get("unknown", "?"),
    session.get("disconnects", "?"), session.get("rate_limited", "?"),
    session.get("status_queries", "?"), session.get("not_connected", "?"))
if problems:
    for p in problems:
        print("trade-loopback: " + p, file=sys.stderr)
    print("trade-loopback: FAIL " + summary)
    sys.exit(1)
print("trade-loopback: PASS orders, fills, balances and position equal the exchange's; " + summary)
PY
