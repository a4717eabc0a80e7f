#!/usr/bin/env bash
# Order entry against Binance's Spot testnet (never run in CI: it needs keys and the internet).
#
#   PINION_TESTNET_API_KEY=... PINION_TESTNET_SECRET="$(cat ed25519-key.pem)" \
#       scripts/trade-testnet.sh [SECONDS] [OUT_DIR]       (defaults: 60 s, fixtures/testnet-DATE)
#
# The sessions, each `pinion live --trade` on configs/live-binance-testnet.toml:
#   1. a clean session that leaves its orders open at the end ([exit] policy = "leave");
#   2. a session that starts with those orders open (they are an earlier run's: cancelled
#      before its first order), trades, and is stopped with SIGINT half-way: it must cancel
#      what it has open and exit 130 with its report written;
#   3. a clean session with an HMAC key when PINION_TESTNET_HMAC_KEY/PINION_TESTNET_HMAC_SECRET
#      are set (no logon: every request signed, user data by signature).
# Every session records the market (--record) and every frame of its order session, the API
# key masked (--record-orders), into OUT_DIR: the venue's real answers and events, to be
# turned into test fixtures. Each session's account (orders, fills, balances, counters) is
# written there too, and a session passes only when no order ended unknown. The last line is
# a one-line summary; exit 0 when every session passed.
set -euo pipefail
cd "$(dirname "$0")/.."

run_s="${1:-60}"
out="${2:-fixtures/testnet-$(date -u +%Y%m%dT%H%M%SZ)}"
if [ -z "${PINION_TESTNET_API_KEY:-}" ] || [ -z "${PINION_TESTNET_SECRET:-}" ]; then
    echo "trade-testnet: set PINION_TESTNET_API_KEY and PINION_TESTNET_SECRET (an Ed25519 testnet key)" >&2
    exit 2
fi
mkdir -p "$out"
cargo build -q --release -p pinion-engine
bin=target/release/pinion

session() {
    local name="$1"; shift
    echo "trade-testnet: session $name" >&2
    set +e
    "$bin" live --config configs/live-binance-testnet.toml --trade --no-progress \
        --record "$out/$name-market.pnr" --record-orders "$out/$name-orders.pnr" \
        --account-out "$out/$name-account.json" --report-json "$out/$name-report.json" \
        --set "live.exchange_info_cache=\"$out/exchangeinfo.json\"" "$@" \
        >"$out/$name.out" 2>"$out/$name.err"
    local rc=$?
    set -e
    echo "$rc"
}

verdicts=()
check() {
    local name="$1" rc="$2" want="$3"
    local verdict
    verdict="$(python3 - "$out/$name-account.json" "$rc" "$want" <<'PY'
import json, sys
try:
    accounts = json.load(open(sys.argv[1]))
except Exception as e:
    print("FAIL(no account: %s)" % e); sys.exit()
rc, want = int(sys.argv[2]), int(sys.argv[3])
problems = []
if rc != want:
    problems.append("exit %d, wanted %d" % (rc, want))
for a in accounts:
    unknown = [o["client_order_id"] for o in a["orders"] if o["state"] in ("Unknown", "PendingNew")]
    if unknown:
        problems.append("%d orders unknown at the end" % len(unknown))
    if a["session"]["ready"] < 1:
        problems.append("the session never became ready")
orders = sum(len(a["orders"]) for a in accounts)
print(("PASS" if not problems else "FAIL(" + "; ".join(problems) + ")") + " orders=%d" % orders)
PY
)"
    verdicts+=("$name:$verdict")
}

rc=$(session clean-open --duration "$run_s" --set exit.policy=leave)
check clean-open "$rc" 0

# Stopped half-way with SIGINT, as an operator's Ctrl-C.
(
    sleep $(( run_s / 2 ))
    pkill -INT -f "live --config configs/live-binance-testnet.toml" || true
) &
rc=$(session adopt-and-stop --set live.orders.open_orders=\"cancel\")
wait
check adopt-and-stop "$rc" 130

if [ -n "${PINION_TESTNET_HMAC_KEY:-}" ] && [ -n "${PINION_TESTNET_HMAC_SECRET:-}" ]; then
    rc=$(PINION_TESTNET_API_KEY="$PINION_TESTNET_HMAC_KEY" PINION_TESTNET_SECRET="$PINION_TESTNET_HMAC_SECRET" \
        session hmac --duration "$run_s" --set live.orders.key_kind=\"hmac\")
    check hmac "$rc" 0
fi

summary="${verdicts[*]}"
echo "trade-testnet: fixtures in $out"
if [[ "$summary" == *FAIL* ]]; then
    echo "trade-testnet: FAIL $summary"
    exit 1
fi
echo "trade-testnet: PASS $summary"
