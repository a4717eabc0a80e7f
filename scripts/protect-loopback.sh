#!/usr/bin/env bash
# Staying safe when pinion itself fails, end to end on loopback over real TLS: the exchange
# simulator serves the synthetic Binance Spot market and its WS API, and `pinion live --trade`
# trades against it with `[strategy] protect = "exchange"` (a stop-loss and a take-profit, kept
# on the exchange as an OCO sized to the position) and a journal, every run on the same account
# and journal. Three phases; the run passes only when all of these hold:
#
# 1. Protection outlives the engine.
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
# 2. A wedged stage under a watchdog. The script plays systemd (`Type=notify`, `WatchdogSec=`,
#    `Restart=on-watchdog`) on a NOTIFY_SOCKET of its own: it starts the engine with
#    `[watchdog] enabled = true`, WATCHDOG_USEC and WATCHDOG_PID, and with the test hook
#    `PINION_TEST_STALL=book:MS` (debug builds only) that wedges the book stage MS after the
#    stages start.
#   - READY=1 comes, then WATCHDOG=1 pings while the stages run, from the engine's own pid;
#   - the pings stop after the stall (the last within two ping periods of it), and the engine
#     says it withholds them; when WATCHDOG_USEC passes without one the script kills the engine
#     as systemd does (SIGABRT, SIGKILL if that has not ended it within 2 s);
#   - the engine is started again as systemd restarts it, without the stall: it pings until its
#     run ends (none missed), withholds none, ends cleanly, and its position equals the net of
#     every trade at the exchange with nothing left open there.
# 3. Flatten from the operator bot. With `[bot]` against the simulator's Bot API fake, once the
#    engine trades and holds a position the whitelisted operator sends `/flatten BTCUSDT`, is
#    asked to confirm, and sends `/flatten confirm`:
#   - the bot alerts `flatten BTCUSDT: done, position 0`, and no order goes out after it;
#   - stopped with SIGTERM, the engine ends cleanly reporting position 0 and the flatten done
#     (cause operator); nothing is open at the exchange, and the net of every trade at the
#     exchange is 0, equal to the engine's position.
#
#   scripts/protect-loopback.sh [SECONDS] [SEED]   (defaults: 20 s, seed 7; phase 1's restarted
#                                                   run and phase 2's restarted run each trade
#                                                   about SECONDS)
#   PROTECT_LOOPBACK_PROFILE=dev scripts/protect-loopback.sh 20   (the dev build; default release)
#
# Phase 2 runs the dev build of pinion whatever the profile (the stall hook exists only in
# builds with debug assertions; with another profile the script builds that binary too).
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
profile="${PROTECT_LOOPBACK_PROFILE:-release}"
loopback_build "$profile"
# Phase 2's engine: a build with debug assertions, where the stall hook exists.
if [ "$profile" = dev ]; then
    debug_bin="$bin"
else
    cargo build -q -p pinion-engine --bin pinion
    debug_bin=target/debug
fi
loopback_scratch
# Only phase 2's engine is told of a service manager, by the script.
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID PINION_TEST_STALL

# Every problem found, one a line; the run passes when there is none.
: >"$dir/problems.txt"
fail() { printf '%s\n' "$1" >>"$dir/problems.txt"; echo "protect-loopback: $1" >&2; }

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
operator=4242
export PINION_BOT_TOKEN="424242:protect-loopback-${seed}"

# The market runs through all three phases: two runs of about SECONDS, the rest start-ups,
# kills, the watchdog's wait and the flatten.
rate=2000
messages=$(( rate * (3 * run_s + 120) ))
loopback_start_sim protect-loopback --synthetic --messages "$messages" --rate "$rate" \
    --seed "$seed" --ping-interval-ms 1000 --ws-api-key "$api_key" \
    --ws-api-ed25519-pub "$dir/pub.pem" --ws-api-balance BTC=10 --ws-api-balance USDT=1000000
sim="https://localhost:${port}"
loopback_start_bot protect-loopback

# The shipped Spot config (its [watchdog] enabled = true, silent without a NOTIFY_SOCKET), with
# exits 2 % either side kept on the exchange, and a journal.
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
# Phase 3's: the same with the operator bot, and flattens in slices within 10 s.
{
    cat "$dir/protect.toml"
    cat <<EOF

[risk.flatten]
slice_qty = "0.002"
deadline_s = 10

[bot]
api_url = "https://127.0.0.1:${bot_port}"
ca_file = "${dir}/bot-cert.pem"
users = [${operator}]
poll_timeout_s = 1
EOF
} >"$dir/flatten.toml"

# engine_args N DURATION [CONFIG [BIN_DIR]]: the command line of `pinion live --trade` as run N
# (its account and report to $dir/accountN.json and reportN.json), in the array engine_cmd.
engine_args() {
    local n="$1" duration="$2" config="${3:-$dir/protect.toml}" from="${4:-$bin}"
    engine_cmd=("$from/pinion" live --config "$config" --trade
        --endpoint "wss://localhost:${port}/stream" --rest-endpoint "$sim"
        --ws-api-endpoint "wss://localhost:${port}/ws-api/v3"
        --ca-file "$dir/cert.pem" --duration "$duration" --no-progress -p 2 -w park
        --account-out "$dir/account$n.json" --report-json "$dir/report$n.json"
        --set 'live.symbols=["BTCUSDT"]' --set "live.exchange_info_cache=\"$dir/exchangeinfo.json\""
        --set live.orders.query_after_ms=1500 --set live.orders.recv_window_ms=5000
        --set risk.orders_per_second=3 --set risk.order_burst=5
        --set 'strategy.protect="exchange"')
    # Further overrides, split into words as given.
    # shellcheck disable=SC2206
    engine_cmd+=(${PROTECT_LOOPBACK_SET:-})
}

# start_engine N DURATION [CONFIG]: run N in the background, its output in $dir/pinionN.out/err.
start_engine() {
    local n="$1"
    engine_args "$@"
    PINION_BINANCE_API_KEY="$api_key" PINION_BINANCE_SECRET="$(cat "$dir/key.pem")" \
        "${engine_cmd[@]}" >"$dir/pinion$n.out" 2>"$dir/pinion$n.err" &
    engine_pid=$!
}

sim_account() {
    curl -sf --cacert "$dir/cert.pem" "$sim/sim/account" >"$1"
}

# sim_fact FILE WHAT: of the exchange's account in FILE, "orders" (how many), or "net" (the
# net of every trade, bought less sold; "0" when flat).
sim_fact() {
    python3 - "$1" "$2" <<'PY'
import json, sys
from decimal import Decimal
a = json.load(open(sys.argv[1]))
if sys.argv[2] == "orders":
    print(len(a["orders"]))
else:
    net = sum((Decimal(t["qty"]) if t["isBuyer"] else -Decimal(t["qty"])) for t in a["trades"])
    print(format(net.normalize(), "f") if net else "0")
PY
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

# ---- Phase 1: the bracket outlives the engine.
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
    fail "phase 1: the simulator refused the print at ${price}"
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
    fail "phase 1: after the print at ${price} the stop and take-profit are ${stop_state}, not FILLED EXPIRED"

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
[ "$max_brackets" -le 1 ] || fail "phase 1: run 2 had ${max_brackets} stops resting at once"
sim_account "$dir/sim-phase1.json"

phase1="$(python3 - "$dir" "$rc" "$bracket" "$price" <<'PY'
import json, sys
from decimal import Decimal

d, rc, bracket, price = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
problems = []
sim = json.load(open(d + "/sim-phase1.json"))
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

with open(d + "/problems.txt", "a") as f:
    for p in problems:
        f.write("phase 1: %s\n" % p)
        print("protect-loopback: phase 1: " + p, file=sys.stderr)
stops = [o for o in sim["orders"] if o["type"] == "STOP_LOSS"]
print(("1: bracket rested (%s), stop filled at the exchange with the engine dead (print at %s), "
       "restarted engine took it in; %d stops placed in all (%d by the restarted run), %d trades, "
       "position %s equal to the exchange's") % (
    "; ".join(bracket.splitlines()), price, len(stops), placed, len(sim["trades"]),
    format(position, "f")))
PY
)"
echo "protect-loopback: phase ${phase1}" >&2

# ---- Phase 2: a wedged stage under a watchdog, the script as systemd.
# Pings are due every half of WATCHDOG_USEC; the book stage wedges stall_ms after the stages
# start. The command line (so its --duration) is the same for both starts, as systemd's
# ExecStart is: the first must be killed by the watchdog well before it would end by itself.
wd_usec=2000000
stall_ms=3000
wd_duration="$run_s"
engine_args 3 "$wd_duration" "$dir/protect.toml" "$debug_bin"
set +e
PINION_BINANCE_API_KEY="$api_key" PINION_BINANCE_SECRET="$(cat "$dir/key.pem")" \
python3 - "$dir/watchdog.json" "$dir/notify" "$wd_usec" "book:${stall_ms}" "$dir/pinion3-" \
    "$(( 3 * run_s + 60 ))" "${engine_cmd[@]}" <<'PY'
# systemd's part for one Type=notify service with WatchdogSec= and Restart=on-watchdog, as far
# as this test needs it: the notification socket (with credentials passed, so each datagram's
# sender is known: as under NotifyAccess=main, only the service's main process counts), the
# service started with NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, killed with SIGABRT (then
# SIGKILL) when WATCHDOG_USEC passes after READY=1 or the last WATCHDOG=1 without another, and
# then started once more, without the stall. What each start did goes to a JSON file.
#
# Its clock leaves out the time this process was not run at all (a loop of 20 ms waits that
# took over 250 ms): a shared or virtual host can stop every process for seconds, the
# engine with the test, and that is not a wedged stage. A stage that wedges while the host
# runs is seen in full.
import json, os, signal, socket, struct, subprocess, sys, time

out, path, usec, stall, prefix, limit = sys.argv[1:7]
command = sys.argv[7:]
usec, limit = int(usec), float(limit)
interval = usec / 1e6
abort_s, start_s, restart_s, step_s, paused_s = 2.0, 60.0, 0.5, 0.02, 0.25
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
ucred = struct.Struct("iII")
t0 = time.monotonic()
clock = {"tick": t0, "lost": 0.0}
pauses = []

def now():
    """Seconds since the start, less the time this process was not run."""
    return round(time.monotonic() - t0 - clock["lost"], 3)

def tick():
    t = time.monotonic()
    gap = t - clock["tick"]
    clock["tick"] = t
    if gap > paused_s:
        clock["lost"] += gap - step_s
        pauses.append([now(), round(gap, 3)])

def receive(block):
    """One datagram: (its sender's pid, its lines); None when none came."""
    sock.settimeout(step_s if block else 0)
    try:
        data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(ucred.size))
    except (socket.timeout, BlockingIOError):
        return None
    pid = None
    for level, kind, cdata in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = ucred.unpack(cdata[:ucred.size])[0]
    return pid, data.decode(errors="replace").split("\n")

def run(n, with_stall):
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC=str(usec))
    env.pop("PINION_TEST_STALL", None)
    if with_stall:
        env["PINION_TEST_STALL"] = stall
    # As systemd sets it: WATCHDOG_PID is the service's main pid, which the exec keeps.
    wrapper = 'ulimit -c 0; WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"'
    with open("%s%d.out" % (prefix, n), "w") as o, open("%s%d.err" % (prefix, n), "w") as e:
        child = subprocess.Popen(["/bin/sh", "-c", wrapper, "sh"] + command, env=env,
                                 stdin=subprocess.DEVNULL, stdout=o, stderr=e)
    clock["tick"] = time.monotonic()
    start = {"pid": child.pid, "stall": stall if with_stall else None, "started": now(),
             "ready": None, "pings": [], "stopping": None, "other": [], "foreign": 0,
             "killed": None, "signals": [], "exit": None}
    last = None

    def take(lines):
        nonlocal last
        for line in lines:
            if line == "READY=1" and start["ready"] is None:
                start["ready"] = last = now()
            elif line == "WATCHDOG=1":
                start["pings"].append(now())
                last = now()
            elif line == "STOPPING=1":
                start["stopping"] = now()
                last = None
            elif line:
                start["other"].append(line)

    while True:
        got = receive(True)
        # Before anything received is timed: a datagram read on waking from a stop of the
        # whole host was sent on waking too.
        tick()
        if got is not None:
            if got[0] == child.pid:
                take(got[1])
            else:
                start["foreign"] += 1
            continue
        rc = child.poll()
        if rc is not None:
            # What the process sent before it ended is queued already.
            while (got := receive(False)) is not None:
                tick()
                if got[0] == child.pid:
                    take(got[1])
            start["exit"] = rc
            start["ended"] = now()
            return start
        t = now()
        if start["killed"] is None:
            if last is not None and t - last > interval:
                start["killed"] = {"why": "watchdog", "at": t}
            elif start["ready"] is None and t - start["started"] > start_s:
                start["killed"] = {"why": "start timeout", "at": t}
            elif time.monotonic() - t0 > limit:
                start["killed"] = {"why": "test time limit", "at": t}
            if start["killed"] is not None:
                child.send_signal(signal.SIGABRT)
                start["signals"].append("SIGABRT")
        elif "SIGKILL" not in start["signals"] and t - start["killed"]["at"] > abort_s:
            child.kill()
            start["signals"].append("SIGKILL")

starts = [run(1, True)]
if starts[0]["killed"] and starts[0]["killed"]["why"] == "watchdog":
    time.sleep(restart_s)
    starts.append(run(2, False))
sock.close()
os.unlink(path)
json.dump({"interval": interval, "stall": stall, "starts": starts, "pauses": pauses},
          open(out, "w"), indent=1)
PY
wd_rc=$?
set -e
[ "$wd_rc" = 0 ] || fail "phase 2: playing systemd failed (exit $wd_rc)"
sim_account "$dir/sim-phase2.json"

phase2="$(python3 - "$dir" "$stall_ms" "$wd_duration" <<'PY'
import json, sys
from decimal import Decimal

d, stall_ms, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
problems = []
def err(n):
    try:
        return open("%s/pinion3-%d.err" % (d, n)).read()
    except OSError:
        return ""
try:
    wd = json.load(open(d + "/watchdog.json"))
except (OSError, ValueError):
    wd = {"interval": 0, "starts": []}
interval = wd["interval"]
period = interval / 2
starts = wd["starts"]
first = starts[0] if starts else None
second = starts[1] if len(starts) > 1 else None
watchdog_kill = first is not None and (first["killed"] or {}).get("why") == "watchdog"
stalled = "?"
orders = "-"
if first is None:
    problems.append("the engine was never started")
elif first["ready"] is None:
    problems.append("the first start never said READY=1 (%s): %s" % (first["killed"], err(1)[-400:]))
else:
    stall_at = first["ready"] + stall_ms / 1000
    before = [t for t in first["pings"] if t < stall_at]
    # A ping in the first period after the stall may still count rounds made before it.
    late = [t for t in first["pings"] if t > stall_at + 2 * period + 0.5]
    if len(before) < 2:
        problems.append("%d pings before the stall, not 2 or more" % len(before))
    if late:
        problems.append("pings went on after the stall (at %s, the stall at %.3f)" % (late, stall_at))
    if not watchdog_kill:
        problems.append("the wedged engine was not stopped by the watchdog: %s, exit %s"
                        % (first["killed"], first["exit"]))
    if first["foreign"]:
        problems.append("%d notifications came from a process other than the engine" % first["foreign"])
    # The engine's own word: its log record that it withholds the pings, naming the thread.
    said = next((l for l in err(1).splitlines() if "watchdog pings withheld" in l), None)
    if said is None:
        problems.append("the wedged engine did not say it withheld the pings")
    else:
        try:
            stalled = json.loads(said).get("thread", "?")
        except ValueError:
            stalled = "?"
if watchdog_kill:
    if second is None:
        problems.append("the engine was not started again")
    elif second["pid"] == first["pid"]:
        problems.append("the restart has the killed engine's pid")
    else:
        p = second["pings"]
        gaps = [b - a for a, b in zip(p, p[1:])]
        if second["ready"] is None:
            problems.append("the restarted engine never said READY=1: %s" % err(2)[-400:])
        if second["killed"] is not None:
            problems.append("the restarted engine was killed too: %s" % second["killed"])
        if len(p) < duration / period / 2:
            problems.append("the restarted engine pinged %d times in a %g s run" % (len(p), duration))
        if gaps and max(gaps) > interval:
            problems.append("the restarted engine left %.2f s between pings" % max(gaps))
        if second["stopping"] is None:
            problems.append("the restarted engine never said STOPPING=1")
        if second["exit"] != 0:
            problems.append("the restarted engine exited %s: %s" % (second["exit"], err(2)[-400:]))
        if "(%d ms): %d pings, 0 withheld" % (interval * 1000, len(p)) not in err(2):
            problems.append("the restarted engine does not report %d pings, 0 withheld" % len(p))
        try:
            report = json.load(open(d + "/report3.json"))
            sim = json.load(open(d + "/sim-phase2.json"))
            trading = (report.get("trading") or [{}])[0]
            orders = trading.get("orders", 0)
            if not orders:
                problems.append("the restarted engine placed no order")
            position = Decimal(trading.get("position", "NaN"))
            net = sum((Decimal(t["qty"]) if t["isBuyer"] else -Decimal(t["qty"])) for t in sim["trades"])
            if position != net:
                problems.append("after the restart position %s, the exchange's trades net %s" % (position, net))
            left = [o["clientOrderId"] for o in sim["orders"] if o["status"] in ("NEW", "PARTIALLY_FILLED")]
            if left:
                problems.append("still open at the exchange after the restarted run: %s" % left)
        except (OSError, ValueError) as e:
            problems.append("the restarted engine's report: %s" % e)

with open(d + "/problems.txt", "a") as f:
    for p in problems:
        f.write("phase 2: %s\n" % p)
        print("protect-loopback: phase 2: " + p, file=sys.stderr)
if first is None or first["ready"] is None:
    print("2: the watchdog run never got ready")
else:
    last = first["pings"][-1] if first["pings"] else first["ready"]
    paused = sum(g for _, g in wd.get("pauses", []))
    killed = ("killed (%s) %.1f s after it" % ("+".join(first["signals"]), first["killed"]["at"] - last)
              if first["killed"] else "never killed")
    print(("2: %d pings, the %s thread wedged %.1f s after READY, the last ping %.1f s after READY, "
           "%s; restarted as pid %s: %s pings, %s orders, exit %s%s") % (
        len(first["pings"]), stalled, stall_ms / 1000, last - first["ready"], killed,
        second["pid"] if second else "-", len(second["pings"]) if second else "-", orders,
        second["exit"] if second else "-",
        " (the host stopped the test %.1f s, not counted)" % paused if paused else ""))
PY
)"
echo "protect-loopback: phase ${phase2}" >&2

# ---- Phase 3: flatten from the operator bot.
sim_account "$dir/sim-before-flatten.json"
orders_before="$(sim_fact "$dir/sim-before-flatten.json" orders)"
start_engine 4 $(( run_s * 10 )) "$dir/flatten.toml"
# Trading, with a position: an order of this run at the exchange, and a net position there.
held=""
for _ in $(seq 1 $(( run_s * 10 ))); do
    kill -0 "$engine_pid" 2>/dev/null || break
    if sim_account "$dir/sim-run4.json" &&
       [ "$(sim_fact "$dir/sim-run4.json" orders)" -gt "$orders_before" ] &&
       [ "$(sim_fact "$dir/sim-run4.json" net)" != 0 ]; then
        held="$(sim_fact "$dir/sim-run4.json" net)"
        break
    fi
    sleep 0.1
done
flattened=""
orders_confirm=""
orders_flat=""
if [ -z "$held" ]; then
    fail "phase 3: the engine held no position at the exchange within ${run_s} s: $(tail -3 "$dir/pinion4.err" | tr '\n' ' ')"
else
    n="$(bot_sent_count)"
    bot_say "$operator" "/flatten BTCUSDT"
    asked="$(bot_reply_after "$n" "$operator" "Reply /flatten confirm" 20)"
    if [ -z "$asked" ]; then
        fail "phase 3: /flatten BTCUSDT did not ask for confirmation"
    else
        sim_account "$dir/sim-confirm.json"
        orders_confirm="$(sim_fact "$dir/sim-confirm.json" orders)"
        n="$(bot_sent_count)"
        bot_say "$operator" "/flatten confirm"
        flattened="$(bot_reply_after "$n" "$operator" "flatten BTCUSDT: done, position 0" 20)"
        if [ -z "$flattened" ]; then
            fail "phase 3: no 'flatten BTCUSDT: done, position 0' alert: $(bot_reply_after "$n" "$operator" "flatten" 1)"
        else
            sim_account "$dir/sim-flat.json"
            orders_flat="$(sim_fact "$dir/sim-flat.json" orders)"
            # Flat, and the strategy stays stopped: nothing new may reach the exchange.
            sleep 1
        fi
    fi
fi
kill -TERM "$engine_pid" 2>/dev/null || true
set +e
wait "$engine_pid"
rc4=$?
set -e
engine_pid=""
sim_account "$dir/sim-end.json"

phase3="$(python3 - "$dir" "$rc4" "$orders_confirm" "$orders_flat" "$([ -n "$flattened" ] && echo 1 || echo 0)" <<'PY'
import json, sys
from decimal import Decimal

d, rc, orders_confirm, orders_flat, alerted = sys.argv[1:6]
problems = []
sim = json.load(open(d + "/sim-end.json"))
if int(rc) != 0:
    problems.append("the flattened engine exited %s on SIGTERM" % rc)
try:
    report = json.load(open(d + "/report4.json"))
except (OSError, ValueError) as e:
    report = {}
    problems.append("the flattened engine's report: %s" % e)
trading = (report.get("trading") or [{}])[0]
position = Decimal(trading.get("position", "NaN"))
net = sum((Decimal(t["qty"]) if t["isBuyer"] else -Decimal(t["qty"])) for t in sim["trades"])
if position != 0:
    problems.append("the engine reports position %s after the flatten" % position)
if position != net:
    problems.append("position %s, the exchange's trades net %s" % (position, net))
left = [o["clientOrderId"] for o in sim["orders"] if o["status"] in ("NEW", "PARTIALLY_FILLED")]
if left:
    problems.append("still open at the exchange after the flatten: %s" % left)
flat = trading.get("flatten") or {}
last = flat.get("last") or {}
if alerted == "1" and (last.get("cause"), last.get("outcome")) != ("operator", "done"):
    problems.append("the report's last flatten is %s, not done on the operator's word" % last)
if orders_flat and len(sim["orders"]) != int(orders_flat):
    problems.append("%d orders went out after the flatten was done" % (len(sim["orders"]) - int(orders_flat)))
# The closing orders, and any the strategy sent before it stopped: none larger than a slice.
if orders_confirm:
    big = ["%s %s" % (o["clientOrderId"], o["origQty"]) for o in sim["orders"][int(orders_confirm):]
           if o["type"] not in ("STOP_LOSS", "TAKE_PROFIT") and Decimal(o["origQty"]) > Decimal("0.002")]
    if big:
        problems.append("orders larger than the 0.002 slice after the confirmation: %s" % big)
with open(d + "/problems.txt", "a") as f:
    for p in problems:
        f.write("phase 3: %s\n" % p)
        print("protect-loopback: phase 3: " + p, file=sys.stderr)
at_confirm = "-"
if orders_confirm:
    c = json.load(open(d + "/sim-confirm.json"))
    at_confirm = format(sum((Decimal(t["qty"]) if t["isBuyer"] else -Decimal(t["qty"]))
                            for t in c["trades"]).normalize(), "f")
print("3: position %s at the exchange at the operator's /flatten confirm, closed in %s orders; "
      "after SIGTERM position %s, %d open at the exchange, its trades net %s" % (
    at_confirm, flat.get("closing_orders", "-"), format(position.normalize(), "f"), len(left),
    format(net.normalize(), "f")))
PY
)"
echo "protect-loopback: phase ${phase3}" >&2

summarised=1
problem_count="$(grep -c . "$dir/problems.txt" || true)"
if [ "$problem_count" -gt 0 ]; then
    echo "protect-loopback: FAIL (${problem_count} problems) ${phase1}; ${phase2}; ${phase3}"
    exit 1
fi
echo "protect-loopback: PASS ${phase1}; ${phase2}; ${phase3}"
