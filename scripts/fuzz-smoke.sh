#!/usr/bin/env bash
# Smoke-runs the fuzz targets (fuzz/: Binance Spot frame, Binance Spot SBE binary frame
# (`sbe_frame`), Binance futures frame, Bybit frame, REST snapshot, decimal; `input`, the
# reader picker with every recording reader; `survey`, the
# start-up pass over a recording; `http_exchange`, REST inside captures; `http_response`, the
# REST client's response reader; `live_frame`, the live source's first look at a frame;
# `book_differential`, the array book against the reference under one sync machine;
# `pnr_roundtrip` and `pnr_read`, the recording writer and reader; `pcap`, captures through
# PcapSource, and `pcap_tcp`, one WebSocket connection whose TCP segments arrive in any order;
# `wsapi_frame`, WS API replies; `config_toml`, the config and its validation; `order_table`,
# the order state machine under any sequence of answers and events; `hgrm`, the simulated
# venue's latency-histogram reader; `bot_text`, the operator bot's commands, clipping and token
# masking; `journal_read`, the trading journal's reader over torn and damaged files;
# `sbe_encode`, the SBE encoder of converted recordings; `wsapi_sbe`, the WS API's SBE readers
# generated from the pinned schema, every view over any bytes) for
# a short time each, with fuzz/dict/json.dict or http.dict where the input is such text,
# so a parser or reader change that panics on odd input is caught before it ships. Not a
# substitute for long fuzzing campaigns.
#
# Two ways to run, chosen automatically:
#   fuzz    cargo-fuzz + libFuzzer (AddressSanitizer, coverage). On a nightly toolchain if there
#           is one, else on the stable one with RUSTC_BOOTSTRAP=1 set for the fuzz build alone;
#           installs cargo-fuzz with `cargo install cargo-fuzz --locked` when it is missing.
#           Each target runs for FUZZ_SECONDS (default 20) from the corpus in
#           fuzz/corpus/<target>, after every input in fuzz/regressions/<target>/ (inputs that
#           once crashed it, kept so the bug stays fixed).
#   stable  Where cargo-fuzz cannot be had: the same entry points driven by proptest with random and mutated inputs,
#           `feed/tests/parse_fuzz_smoke.rs`, PROPTEST_CASES inputs each (default 2000). Runs
#           on stable everywhere, CI included.
#
# Usage: scripts/fuzz-smoke.sh [auto|fuzz|stable|build]     (default auto: fuzz if possible;
#        build: the libFuzzer build alone, ahead of a run)
# Env:   FUZZ_SECONDS, PROPTEST_CASES, FUZZ_TARGETS (space-separated subset)
set -euo pipefail

cd "$(dirname "$0")/.."

MODE="${1:-auto}"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"
TARGETS="${FUZZ_TARGETS:-binance_spot_frame sbe_frame binance_futures_frame bybit_frame rest_snapshot decimal flat_equivalence input survey http_exchange http_response live_frame book_differential pnr_roundtrip pnr_read pcap wsapi_frame config_toml pcap_tcp order_table hgrm bot_text journal_read sbe_encode wsapi_sbe}"

have_nightly() {
    rustup toolchain list 2>/dev/null | grep -q '^nightly' ||
        rustc --version 2>/dev/null | grep -q nightly
}

ensure_cargo_fuzz() {
    if cargo fuzz --version >/dev/null 2>&1; then
        return 0
    fi
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
}

# cargo-fuzz needs nightly features (sanitizers, coverage flags). Without a nightly toolchain
# the stable one is told to allow them with RUSTC_BOOTSTRAP=1 — for the fuzz build alone: the
# variable is set on that one command, never for the product's build.
# The dictionary a target's input is written in, if any (as in scripts/fuzz-campaign.sh).
dict_args() {
    case "$1" in
        binance_spot_frame | binance_futures_frame | bybit_frame | flat_equivalence | live_frame | \
            rest_snapshot | wsapi_frame | survey | input | sbe_encode)
            echo "-dict=dict/json.dict" ;;
        http_exchange | http_response | pcap | pcap_tcp)
            echo "-dict=dict/http.dict" ;;
    esac
}

# The smoke build's target directory, under fuzz/.
SMOKE_TARGET_DIR="target/smoke"

build_fuzz() {
    local toolchain=()
    local bootstrap=()
    if have_nightly; then
        toolchain=(+nightly)
        echo "fuzz-smoke: libFuzzer on the nightly toolchain" >&2
    else
        bootstrap=(env RUSTC_BOOTSTRAP=1)
        echo "fuzz-smoke: libFuzzer on the stable toolchain (RUSTC_BOOTSTRAP=1 for the fuzz build only)" >&2
    fi
    # One build of every target, then the targets side by side, one per core: on CI's 2 cores
    # the step takes half the time, and each target still gets its full seconds.
    # A smoke of seconds per target is bound by the build, not by executions per second: it is
    # built with 16 codegen units (cargo-fuzz's default of 1 serialises the biggest crates) at
    # opt-level 1, still with AddressSanitizer and the same coverage instrumentation; about a
    # fifth less build CPU. Its own target directory, so a campaign's fully optimised build
    # (scripts/fuzz-campaign.sh) is not thrown away by it, nor it by a campaign.
    (cd fuzz && CARGO_PROFILE_RELEASE_OPT_LEVEL=1 "${bootstrap[@]}" cargo "${toolchain[@]}" \
        fuzz build -O --codegen-units 16 --target-dir "$SMOKE_TARGET_DIR")
}

run_fuzz() {
    # A no-op when `build` ran before (as .ci/run does, beside the tests).
    build_fuzz
    local target_dir="$SMOKE_TARGET_DIR"
    local triple
    triple="$(rustc -vV | awk '/^host:/{print $2}')"
    local bin_dir="fuzz/$target_dir/$triple/release"
    local parallel="${FUZZ_PARALLEL:-$(nproc 2>/dev/null || echo 1)}"
    local pids=() names=() failed=()
    # The engine links SQLite's amalgamation (rusqlite, bundled), whose globals AddressSanitizer
    # reports as an ODR violation at start-up in every binary that links the engine; that check
    # is about the C build, not about what the targets test, so it is off.
    export ASAN_OPTIONS="detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    for target in $TARGETS; do
        echo "fuzz-smoke: $target for ${SECONDS_PER_TARGET}s" >&2
        mkdir -p "fuzz/corpus/$target"
        # Inputs that once crashed a target (fuzz/regressions/<target>/) run first, every time.
        local regressions=()
        [ -d "fuzz/regressions/$target" ] && regressions=("regressions/$target")
        (cd fuzz && "../$bin_dir/$target" "corpus/$target" "${regressions[@]}" \
            -max_total_time="$SECONDS_PER_TARGET" \
            -rss_limit_mb=2048 $(dict_args "$target") >"corpus/$target.log" 2>&1) &
        pids+=("$!")
        names+=("$target")
        if [ "${#pids[@]}" -ge "$parallel" ]; then
            wait "${pids[0]}" || failed+=("${names[0]}")
            echo "fuzz-smoke: ${names[0]}: $(tail -n 1 "fuzz/corpus/${names[0]}.log")" >&2
            pids=("${pids[@]:1}")
            names=("${names[@]:1}")
        fi
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || failed+=("${names[$i]}")
        echo "fuzz-smoke: ${names[$i]}: $(tail -n 1 "fuzz/corpus/${names[$i]}.log")" >&2
    done
    if [ "${#failed[@]}" -gt 0 ]; then
        for t in "${failed[@]}"; do
            echo "fuzz-smoke: $t FAILED:" >&2
            tail -n 40 "fuzz/corpus/$t.log" >&2
        done
        return 1
    fi
    echo "fuzz-smoke: every target ran ${SECONDS_PER_TARGET}s clean" >&2
}

run_stable() {
    echo "fuzz-smoke: stable fallback (proptest), ${PROPTEST_CASES:-2000} inputs per entry point" >&2
    PROPTEST_CASES="${PROPTEST_CASES:-2000}" cargo test -p pinion-feed \
        --test parse_fuzz_smoke
}

case "$MODE" in
    build)
        # The build alone, so it can run ahead of the smoke (`.ci/run` starts it at low
        # priority while the loopback tests wait on their simulators). Without cargo-fuzz there
        # is nothing to build: the smoke then says which fallback ran.
        if ensure_cargo_fuzz; then
            build_fuzz
        else
            echo "fuzz-smoke: cargo-fuzz unavailable; nothing to build" >&2
        fi
        ;;
    fuzz)
        ensure_cargo_fuzz
        run_fuzz
        ;;
    stable)
        run_stable
        ;;
    auto)
        if ensure_cargo_fuzz; then
            run_fuzz
        else
            echo "fuzz-smoke: cargo-fuzz unavailable; using the stable fallback" >&2
            run_stable
        fi
        ;;
    *)
        echo "usage: $0 [auto|fuzz|stable|build]" >&2
        exit 2
        ;;
esac
