#!/usr/bin/env bash
# The operations side end to end on loopback, over real TLS: the exchange simulator serves the
# synthetic Binance Spot market and its WS API, the simulator's Bot API fake stands in for
# Telegram, and `pinion live --trade` trades against them with its metrics endpoint, structured
# log, trade history and operator bot on. The run passes only when all of these hold:
#   - /health and /ready answer 200 once the session is up, and /metrics passes
#     `promtool check metrics`;
#   - the operator's /status is answered through the bot; a stranger's /kill confirm is refused
#     unanswered and counted (pinion_bot_ignored_total), and trading goes on;
#   - the engine is killed with SIGKILL mid-run and started again: after the restart nothing the
#     exchange acknowledged is lost or left working behind the engine's back (see below);
#   - the operator's /kill asks to confirm, the confirmation kills trading, and the metrics say
#     so (pinion_kill_switch 1);
#   - the restarted run ends cleanly (exit 0), its log and history written.
#
# After the restart, without a journal the engine knows only what reconciliation tells it: the
# balances (account.status) and the orders of its new run. So the check is that no order of the
# killed run is still open at the exchange once the restarted engine is ready (the start-up
# cancels them; the engine quotes, so one is open at the kill), that
# every order of the new run is known to the engine with the exchange's state and filled
# quantity, that every balance equals the exchange's (the killed run's fills included), and that
# the new run's position equals the net of its trades at the exchange. With the `[journal]`
# block (the default; JOURNAL_BLOCK below, OPS_LOOPBACK_JOURNAL sets it), the killed run's orders
# still open at the kill must be known to the restarted engine with the exchange's final state
# (its journal gave them to it; those closed before the kill are history it has no need to
# track), and the position must equal the net of every trade of both runs.
#
#   scripts/ops-loopback.sh [SECONDS] [SEED]     (defaults: 20 s, seed 7; each run of the engine
#                                                 trades about SECONDS)
#   OPS_LOOPBACK_PROFILE=dev scripts/ops-loopback.sh 20    (the dev build; default release)
#
# Exit 0 on a pass, 1 otherwise. The last line is a one-line summary.
# Needs curl, python3 and promtool (CI installs them; promtool is in Debian's prometheus).
set -Eeuo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/loopback.sh
loopback_args ops-loopback 12 "$@"
for tool in curl python3 promtool; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "ops-loopback: $tool is needed" >&2
        echo "ops-loopback: FAIL (no $tool)"
        exit 1
    fi
done
loopback_build "${OPS_LOOPBACK_PROFILE:-release}"
loopback_scratch

# The engine's journal: the TOML added to the engine's config, a `[journal]` table (in
# OPS_LOOPBACK_JOURNAL, @DIR@ stands for the run's scratch directory). Unset: a journal in the
# scratch directory. Set and empty: no journal, and the restart is checked against
# reconciliation alone.
default_journal=$'[journal]\npath = "@DIR@/journal"'
JOURNAL_BLOCK="${OPS_LOOPBACK_JOURNAL-$default_journal}"
JOURNAL_BLOCK="${JOURNAL_BLOCK//@DIR@/$dir}"

operator=4242
stranger=666
problems=()
fail() { problems+=("$1"); echo "ops-loopback: $1" >&2; }

# Everything started here is stopped at exit, the simulator and the Bot API fake by the shared
# cleanup.
engine_pid=""
ops_cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -z "${summarised:-}" ]; then
        echo "ops-loopback: FAIL (stopped at line ${failed_line:-?}, exit $rc)"
    fi
    if [ -n "$engine_pid" ]; then
        kill "$engine_pid" 2>/dev/null || true
        wait "$engine_pid" 2>/dev/null || true
    fi
    loopback_cleanup
}
trap ops_cleanup EXIT
trap 'failed_line=$LINENO' ERR

"$bin/pinion-exchange-sim" keygen --private-out "$dir/key.pem" --public-out "$dir/pub.pem"
api_key="pinionOps$(printf '%08d' "$seed")"
export PINION_BOT_TOKEN="424242:ops-loopback-${seed}"

# The engine quotes (market making), so that orders rest at the exchange: one is open when the
# engine is killed, and the operator's kill has orders to cancel.
# The market runs for both runs of the engine and the gap between them.
rate=2000
messages=$(( rate * (2 * run_s + 60) ))
loopback_start_sim ops-loopback --synthetic --messages "$messages" --rate "$rate" \
    --seed "$seed" --ping-interval-ms 1000 --ws-api-key "$api_key" \
    --ws-api-ed25519-pub "$dir/pub.pem" --ws-api-balance BTC=10 --ws-api-balance USDT=1000000
sim="https://localhost:${port}"

loopback_start_bot ops-loopback

# A free port for the metrics endpoint, the same for both runs (scraped by address).
mport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
metrics="http://127.0.0.1:${mport}"

# The config: the shipped Spot config with the operations tables added.
{
    cat configs/live-binance-spot.toml
    cat <<EOF

[metrics]
listen = "127.0.0.1:${mport}"

[log]
level = "info"
file = "${dir}/pinion.log"

[history]
db = "${dir}/history.db"

[bot]
api_url = "https://127.0.0.1:${bot_port}"
ca_file = "${dir}/bot-cert.pem"
users = [${operator}]
poll_timeout_s = 2
kill_confirm_s = 30
EOF
    printf '\n%s\n' "$JOURNAL_BLOCK"
} >"$dir/ops.toml"

# start_engine N DURATION: `pinion live --trade` in the background, as run N.
start_engine() {
    local n="$1" duration="$2"
    PINION_BINANCE_API_KEY="$api_key" PINION_BINANCE_SECRET="$(cat "$dir/key.pem")" \
    "$bin/pinion" live --config "$dir/ops.toml" --trade \
        --endpoint "wss://localhost:${port}/stream" --rest-endpoint "$sim" \
        --ws-api-endpoint "wss://localhost:${port}/ws-api/v3" \
        --ca-file "$dir/cert.pem" --duration "$duration" --no-progress -p 2 -w park \
        --account-out "$dir/account$n.json" --report-json "$dir/report$n.json" \
        --set 'live.symbols=["BTCUSDT"]' --set "live.exchange_info_cache=\"$dir/exchangeinfo.json\"" \
        --set live.orders.query_after_ms=1500 --set live.orders.recv_window_ms=5000 \
        --set risk.orders_per_second=3 --set risk.order_burst=5 \
        --set strategy.kind=market-making \
        ${OPS_LOOPBACK_SET:-} >"$dir/pinion$n.out" 2>"$dir/pinion$n.err" &
    engine_pid=$!
}

# http_code PATH: the endpoint's status for PATH (000: no answer); the body in $dir/http.body.
http_code() {
    curl -s -o "$dir/http.body" -w '%{http_code}' --max-time 3 "$metrics$1" || true
}

# wait_ready N: /ready 200 within 40 s, while run N lives.
wait_ready() {
    local n="$1"
    for _ in $(seq 1 400); do
        [ "$(http_code /ready)" = 200 ] && return 0
        if ! kill -0 "$engine_pid" 2>/dev/null; then
            fail "run $n ended before it was ready: $(tail -3 "$dir/pinion$n.err" | tr '\n' ' ')"
            return 1
        fi
        sleep 0.1
    done
    fail "run $n: /ready never answered 200: $(tr '\n' ' ' <"$dir/http.body")"
    return 1
}

# metric NAME: the value of an unlabelled sample (empty when absent).
# awk reads the whole exposition (no early exit): curl killed by SIGPIPE mid-write would fail
# the pipeline under pipefail, which a larger exposition made happen.
metric() {
    curl -s --max-time 3 "$metrics/metrics" | awk -v n="$1" '$1 == n && !found {print $2; found = 1}'
}

# sim_account FILE: the exchange's account now.
sim_account() {
    curl -sf --cacert "$dir/cert.pem" "$sim/sim/account" >"$1"
}

sim_orders() {
    python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["orders"]))' "$1"
}

sim_open_orders() {
    python3 -c 'import json,sys; print(sum(o["status"] in ("NEW", "PARTIALLY_FILLED") for o in json.load(open(sys.argv[1]))["orders"]))' "$1"
}

# ---- run 1: up, observed, commanded, then killed with SIGKILL mid-run.
start_engine 1 $(( run_s * 10 ))
run1_up=0
if wait_ready 1; then
    run1_up=1
    [ "$(http_code /health)" = 200 ] || fail "run 1: /health answered $(http_code /health)"
    curl -s --max-time 3 "$metrics/metrics" >"$dir/metrics1.txt"
    if ! promtool check metrics <"$dir/metrics1.txt" >"$dir/promtool.out" 2>&1; then
        fail "run 1: promtool check metrics: $(tr '\n' ' ' <"$dir/promtool.out")"
    fi
    grep -q '^pinion_bot_ignored_total 0$' "$dir/metrics1.txt" ||
        fail "run 1: the bot's counters are not exported (pinion_bot_ignored_total 0)"

    n="$(bot_sent_count)"
    bot_say "$operator" /status
    status="$(bot_reply_after "$n" "$operator" "State: trading" 20)"
    [ -n "$status" ] || fail "run 1: the operator's /status was not answered"

    # A stranger's kill: refused unanswered, counted, and trading goes on.
    n="$(bot_sent_count)"
    bot_say "$stranger" "/kill confirm"
    ignored=""
    for _ in $(seq 1 100); do
        ignored="$(metric pinion_bot_ignored_total)"
        [ "$ignored" = 1 ] && break
        sleep 0.1
    done
    [ "$ignored" = 1 ] || fail "run 1: the stranger was not counted (pinion_bot_ignored_total ${ignored:-absent})"
    [ -z "$(bot_reply_after "$n" "$stranger" "" 1)" ] || fail "run 1: the bot answered a stranger"
    [ "$(metric pinion_kill_switch)" = 0 ] || fail "run 1: a stranger's /kill confirm killed trading"

    # Trade for about half the session; then kill while an order is open at the exchange if
    # one opens within 10 s (so the restart has an order of the killed run to settle).
    sleep $(( run_s / 2 ))
    for _ in $(seq 1 200); do
        sim_account "$dir/sim-before-kill.json"
        [ "$(sim_open_orders "$dir/sim-before-kill.json")" -gt 0 ] && break
        sleep 0.05
    done
    run1_sent="$(metric pinion_gateway_orders_sent_total)"
fi
kill -KILL "$engine_pid" 2>/dev/null || true
wait "$engine_pid" 2>/dev/null || true
engine_pid=""
# What the exchange acknowledged of run 1, all of it: the engine is gone.
sim_account "$dir/sim-killed.json"
run1_orders="$(sim_orders "$dir/sim-killed.json")"
[ "$run1_up" = 1 ] && [ "$run1_orders" -eq 0 ] && fail "run 1: no order reached the exchange before the kill"

# ---- run 2: the restart; reconciled, then killed by the operator through the bot.
# Ten seconds more than SECONDS, so a slow start-up on a loaded host still leaves the operator's
# kill time to be asked, confirmed and seen before the run ends.
start_engine 2 $(( run_s + 10 ))
kill_reply=""
confirm_reply=""
if wait_ready 2; then
    # Ready means reconciled: the killed run's orders must be settled at the exchange by now.
    sim_account "$dir/sim-restarted.json"
    [ "$(http_code /health)" = 200 ] || fail "run 2: /health answered $(http_code /health)"
    curl -s --max-time 3 "$metrics/metrics" >"$dir/metrics2.txt"
    promtool check metrics <"$dir/metrics2.txt" >"$dir/promtool.out" 2>&1 ||
        fail "run 2: promtool check metrics: $(tr '\n' ' ' <"$dir/promtool.out")"
    sleep $(( run_s / 3 ))
    n="$(bot_sent_count)"
    bot_say "$operator" /kill
    kill_reply="$(bot_reply_after "$n" "$operator" "Reply /kill confirm" 20)"
    [ -n "$kill_reply" ] || fail "run 2: /kill did not ask for confirmation"
    [ "$(metric pinion_kill_switch)" = 0 ] || fail "run 2: /kill killed before it was confirmed"
    n="$(bot_sent_count)"
    bot_say "$operator" yes
    confirm_reply="$(bot_reply_after "$n" "$operator" "KILLED" 20)"
    [ -n "$confirm_reply" ] || fail "run 2: the confirmation was not answered KILLED"
    killed=""
    for _ in $(seq 1 50); do
        killed="$(curl -s --max-time 3 "$metrics/metrics" | awk '/^pinion_kill_switch\{/ && !found {print $2; found = 1}')"
        [ "$killed" = 1 ] && break
        sleep 0.1
    done
    [ "$killed" = 1 ] || fail "run 2: the metrics do not show the kill (pinion_kill_switch{reason=...} 1)"
fi
set +e
wait "$engine_pid"
rc=$?
set -e
engine_pid=""
cat "$dir/pinion2.out"
if [ ! -s "$dir/account2.json" ]; then
    cat "$dir/pinion2.err" >&2
    fail "run 2 wrote no account (exit $rc)"
    summarised=1
    echo "ops-loopback: FAIL ${problems[*]}"
    exit 1
fi
sim_account "$dir/sim-end.json"
[ -s "$dir/pinion.log" ] || fail "the log file is empty"
[ -s "$dir/history.db" ] || fail "the history file is missing"

printf '%s\n' "${problems[@]}" >"$dir/problems.txt"
summarised=1
python3 - "$dir" "$rc" "${run1_sent:-?}" "$([ -n "$JOURNAL_BLOCK" ] && echo 1 || echo 0)" <<'PY'
import json, os, sys
from decimal import Decimal

d, rc, run1_sent, journal = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
problems = [p for p in open(d + "/problems.txt").read().splitlines() if p]
killed = json.load(open(d + "/sim-killed.json"))
sim = json.load(open(d + "/sim-end.json"))
ours = json.load(open(d + "/account2.json"))
report = json.load(open(d + "/report2.json"))
log_lines = sum(1 for _ in open(d + "/pinion.log"))

if rc != 0:
    problems.append("run 2 exited %d" % rc)
account = ours[0] if ours else {"orders": [], "balances": []}
mine = {o["client_order_id"]: o for o in account["orders"]}
state_for = {"FILLED": "Filled", "CANCELED": "Canceled", "EXPIRED": "Expired",
             "EXPIRED_IN_MATCH": "Expired", "PARTIALLY_FILLED": "PartiallyFilled", "NEW": "New"}
open_states = ("NEW", "PARTIALLY_FILLED")
run1_ids = {o["orderId"] for o in killed["orders"]}
run1_open = {o["orderId"] for o in killed["orders"] if o["status"] in open_states}

if os.path.exists(d + "/sim-restarted.json") and not journal:
    # Without a journal the restarted engine cannot know the killed run's orders: none may be
    # left working once it says it is ready (the start-up cancels them).
    for o in json.load(open(d + "/sim-restarted.json"))["orders"]:
        if o["orderId"] in run1_ids and o["status"] in open_states:
            problems.append("%s of the killed run was still %s when the restarted engine was ready"
                            % (o["clientOrderId"], o["status"]))

seen = set()
run2_order_ids = set()
for o in sim["orders"]:
    cid = o["clientOrderId"]
    if cid in seen:
        problems.append("%s placed twice" % cid)
    seen.add(cid)
    earlier = o["orderId"] in run1_ids
    if not earlier:
        run2_order_ids.add(o["orderId"])
    if earlier and (not journal or o["orderId"] not in run1_open):
        continue
    m = mine.get(cid)
    if m is None:
        problems.append("the exchange has %s, the restarted engine does not" % cid)
        continue
    if Decimal(m["filled"]) != Decimal(o["executedQty"]):
        problems.append("%s filled %s, the exchange says %s" % (cid, m["filled"], o["executedQty"]))
    if m["state"] != state_for.get(o["status"], "?"):
        problems.append("%s is %s, the exchange says %s" % (cid, m["state"], o["status"]))
for cid, m in mine.items():
    if cid not in seen and not m["state"].startswith("Rejected"):
        problems.append("%s never reached the exchange, yet the engine has it %s" % (cid, m["state"]))
for o in sim["orders"]:
    if o["status"] in open_states:
        problems.append("%s is still open at the exchange after the kill switch" % o["clientOrderId"])

balances = {b["asset"]: b for b in account["balances"]}
for b in sim["balances"]:
    m = balances.get(b["asset"])
    if m is None:
        problems.append("no balance of %s" % b["asset"])
    elif Decimal(m["free"]) != Decimal(b["free"]) or Decimal(m["locked"]) != Decimal(b["locked"]):
        problems.append("%s %s/%s, the exchange says %s/%s" % (b["asset"], m["free"], m["locked"], b["free"], b["locked"]))

def net(trades):
    return sum((Decimal(t["qty"]) if t["isBuyer"] else -Decimal(t["qty"])) for t in trades)
trading = report.get("trading") or [{}]
position = Decimal(trading[0].get("position", "NaN"))
counted = sim["trades"] if journal else [t for t in sim["trades"] if t["orderId"] in run2_order_ids]
if position != net(counted):
    problems.append("position %s, the exchange's trades of %s net %s" % (
        position, "both runs" if journal else "the restarted run", net(counted)))
run1_trades = [t for t in sim["trades"] if t["orderId"] in run1_ids]
if log_lines == 0:
    problems.append("the log has no record")

open_at_kill = sum(o["status"] in open_states for o in killed["orders"])
summary = ("killed run: %d orders at the exchange (%s handed to its gateway, %d open at the kill), %d trades; restarted run: %d orders, %d trades, "
           "position %s; bot: status, stranger refused, kill confirmed; log %d records; journal %s") % (
    len(run1_ids), run1_sent, open_at_kill, len(run1_trades), len(run2_order_ids),
    len(sim["trades"]) - len(run1_trades), format(position, "f"), log_lines, "on" if journal else "off")
if problems:
    for p in problems:
        print("ops-loopback: " + p, file=sys.stderr)
    print("ops-loopback: FAIL (%d problems) %s" % (len(problems), summary))
    sys.exit(1)
print("ops-loopback: PASS health, readiness, metrics, bot and restart hold; " + summary)
PY
