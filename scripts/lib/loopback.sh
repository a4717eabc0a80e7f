# Shared by the loopback scripts (sourced, not run): their arguments, the build, a scratch
# directory removed at exit, and the exchange simulator started in the background.
#
#   loopback_args NAME MIN_SECONDS "$@"   sets run_s and seed (defaults 20 and 7), or exits
#   loopback_build PROFILE                 builds the simulator and pinion; sets bin
#   loopback_scratch                       sets dir, removed (and the simulator stopped) at exit
#   loopback_start_sim NAME ARGS...        starts pinion-exchange-sim with ARGS, writing its
#                                          certificate to $dir/cert.pem; sets sim_pid and port
#   loopback_start_bot NAME                starts the simulator's Bot API fake, writing its
#                                          certificate to $dir/bot-cert.pem; sets bot_pid,
#                                          bot_port and bot (its base URL), stopped at exit
#   bot_say USER TEXT                      a message from USER to the bot, through the fake
#   bot_sent_count                         how many messages the bot has sent so far
#   bot_reply_after FROM CHAT PATTERN SECS the first message to CHAT after the first FROM sent
#                                          that contains PATTERN, within SECS (empty: none)

loopback_args() {
    local name="$1" min="$2"
    shift 2
    run_s="${1:-20}"
    seed="${2:-7}"
    if ! [[ "$run_s" =~ ^[0-9]+$ ]] || [ "$run_s" -lt "$min" ]; then
        echo "$name: SECONDS must be a whole number, $min or more" >&2
        exit 1
    fi
    if ! [[ "$seed" =~ ^[0-9]+$ ]]; then
        echo "$name: SEED must be a whole number" >&2
        exit 1
    fi
}

loopback_build() {
    local profile="$1"
    cargo build -q --profile "$profile" -p pinion-exchange-sim -p pinion-engine
    if [ "$profile" = dev ]; then bin=target/debug; else bin="target/$profile"; fi
}

loopback_cleanup() {
    local p
    for p in "${sim_pid:-}" "${bot_pid:-}"; do
        if [ -n "$p" ]; then
            kill "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    rm -rf "$dir"
}

loopback_scratch() {
    dir="$(mktemp -d)"
    sim_pid=""
    bot_pid=""
    trap loopback_cleanup EXIT
}

loopback_start_sim() {
    local name="$1"
    shift
    "$bin/pinion-exchange-sim" live "$@" --listen 127.0.0.1:0 --tls --cert-out "$dir/cert.pem" \
        >"$dir/sim.out" 2>"$dir/sim.err" &
    sim_pid=$!
    for _ in $(seq 1 100); do
        grep -q '^listening ' "$dir/sim.out" 2>/dev/null && break
        sleep 0.1
    done
    local addr
    addr="$(awk '/^listening /{print $2; exit}' "$dir/sim.out")"
    if [ -z "$addr" ]; then
        echo "$name: the simulator did not start:" >&2
        cat "$dir/sim.err" >&2
        echo "$name: FAIL (no simulator)"
        exit 1
    fi
    port="${addr##*:}"
}

loopback_start_bot() {
    local name="$1"
    "$bin/pinion-exchange-sim" bot-api --listen 127.0.0.1:0 --cert-out "$dir/bot-cert.pem" \
        >"$dir/bot.out" 2>"$dir/bot.err" &
    bot_pid=$!
    for _ in $(seq 1 100); do
        grep -q '^listening ' "$dir/bot.out" 2>/dev/null && break
        sleep 0.1
    done
    local addr
    addr="$(awk '/^listening /{print $2; exit}' "$dir/bot.out")"
    if [ -z "$addr" ]; then
        echo "$name: the Bot API fake did not start:" >&2
        cat "$dir/bot.err" >&2
        echo "$name: FAIL (no Bot API fake)"
        exit 1
    fi
    bot_port="${addr##*:}"
    bot="https://localhost:${bot_port}"
}

bot_say() {
    python3 -c 'import json,sys; print(json.dumps({"user_id": int(sys.argv[1]), "text": sys.argv[2]}))' "$1" "$2" |
        curl -sf --cacert "$dir/bot-cert.pem" -X POST -H 'Content-Type: application/json' \
            --data-binary @- "$bot/fake/inject" >/dev/null
}

bot_sent_count() {
    curl -sf --cacert "$dir/bot-cert.pem" "$bot/fake/sent" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

bot_reply_after() {
    local from="$1" chat="$2" pattern="$3" secs="$4" text=""
    for _ in $(seq 1 $(( secs * 5 ))); do
        text="$(curl -sf --cacert "$dir/bot-cert.pem" "$bot/fake/sent" | python3 -c '
import json, sys
sent = json.load(sys.stdin)[int(sys.argv[1]):]
hit = next((m["text"] for m in sent if m["chat_id"] == int(sys.argv[2]) and sys.argv[3] in m["text"]), "")
print(hit.replace("\n", " | "))' "$from" "$chat" "$pattern")"
        [ -n "$text" ] && break
        sleep 0.2
    done
    printf '%s' "$text"
}
