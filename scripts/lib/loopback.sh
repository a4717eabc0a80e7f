# Shared by the loopback scripts (sourced, not run): their arguments, the build, a scratch
# directory removed at exit, and the exchange simulator started in the background.
#
#   loopback_args NAME MIN_SECONDS "$@"   sets run_s and seed (defaults 20 and 7), or exits
#   loopback_build PROFILE                 builds the simulator and pinion; sets bin
#   loopback_scratch                       sets dir, removed (and the simulator stopped) at exit
#   loopback_start_sim NAME ARGS...        starts pinion-exchange-sim with ARGS, writing its
#                                          certificate to $dir/cert.pem; sets sim_pid and port

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
    if [ -n "${sim_pid:-}" ]; then
        kill "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}

loopback_scratch() {
    dir="$(mktemp -d)"
    sim_pid=""
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
