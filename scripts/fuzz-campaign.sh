#!/usr/bin/env bash
# A long fuzzing campaign: each target in turn for MINUTES under libFuzzer (cargo-fuzz), from
# and into fuzz/corpus/<target> (seed it first with scripts/fuzz-corpus.sh), with the JSON or
# HTTP dictionary where the target reads such text; then the corpus is merged and minimized
# (`cargo fuzz cmin`). At the end a table per target: executions, coverage (libFuzzer's `cov`,
# edges), features (`ft`), crashes, CPU seconds used, and when coverage last grew (seconds
# into the run; a run that still found new edges near its end wants more time).
#
# One target at a time by default (the machines it runs on have few cores). FUZZ_JOBS=N runs
# each target with libFuzzer's -fork=N instead (N worker processes, crashes still stop it).
# Crash inputs stay in fuzz/artifacts/<target>/; logs go to reports/fuzz-campaign/<stamp>/.
#
# Usage: scripts/fuzz-campaign.sh MINUTES [TARGETS...]   (default: every target in fuzz/Cargo.toml)
# Env:   FUZZ_JOBS (default 1), FUZZ_RSS_MB (default 2048), FUZZ_NO_CMIN=1 to skip minimizing
# Exit:  non-zero when any target crashed (or could not be built or run).
set -euo pipefail

cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || ! [[ "$1" =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ]; then
    echo "usage: $0 MINUTES [TARGETS...]" >&2
    exit 2
fi
MINUTES="$1"
shift
if [ $# -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^pinion-fuzz$')
fi
JOBS="${FUZZ_JOBS:-1}"
RSS_MB="${FUZZ_RSS_MB:-2048}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
LOGS="reports/fuzz-campaign/$STAMP"
mkdir -p "$LOGS"

# Nightly when there is one, else stable with RUSTC_BOOTSTRAP=1 for the fuzz build alone (as
# scripts/fuzz-smoke.sh).
CARGO=(cargo)
if rustup toolchain list 2>/dev/null | grep -q '^nightly' || rustc --version 2>/dev/null | grep -q nightly; then
    CARGO=(cargo +nightly)
else
    CARGO=(env RUSTC_BOOTSTRAP=1 cargo)
fi
# SQLite's amalgamation (bundled by rusqlite, linked with the engine) trips AddressSanitizer's
# ODR check at start-up; that check is about the C build, not the targets: off, as in the smoke.
export ASAN_OPTIONS="detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
if ! "${CARGO[@]}" fuzz --version >/dev/null 2>&1; then
    echo "fuzz-campaign: cargo-fuzz is missing (cargo install cargo-fuzz --locked)" >&2
    exit 2
fi

# The dictionary a target's input is written in, if any.
dict_for() {
    case "$1" in
        binance_spot_frame | binance_futures_frame | bybit_frame | flat_equivalence | live_frame | \
            rest_snapshot | wsapi_frame | survey | input)
            echo "dict/json.dict" ;;
        http_exchange | http_response | pcap | pcap_tcp)
            echo "dict/http.dict" ;;
        *) echo "" ;;
    esac
}

# Prefixes every line with the Unix second it arrived (bash's own clock: no process per line).
stamp_lines() {
    local line now
    while IFS= read -r line; do
        printf -v now '%(%s)T' -1
        printf '%s %s\n' "$now" "$line"
    done
}

# One summary row from a stamped libFuzzer log: executions, cov, ft, seconds of last growth.
summarize() {
    local log="$1" start="$2"
    awk -v start="$start" '
        {
            t = $1
            if (match($0, / cov: [0-9]+/)) {
                c = substr($0, RSTART + 6, RLENGTH - 6) + 0
                if (c > cov) { cov = c; grew = t - start }
            }
            if (match($0, / ft: [0-9]+/)) ft = substr($0, RSTART + 5, RLENGTH - 5) + 0
            if (match($0, /^[0-9]+ #[0-9]+/)) { split(substr($0, RSTART, RLENGTH), a, "#"); runs = a[2] + 0 }
            if (match($0, /Done [0-9]+ runs/)) runs = substr($0, RSTART + 5, RLENGTH - 10) + 0
        }
        END { printf "%d %d %d %d\n", runs, cov, ft, grew }
    ' "$log"
}

# CPU seconds (user + system) of this shell's finished children so far, from `times` run in
# this shell itself (in a command substitution it would be a fresh process with no children
# yet): `times >"$CPU_FILE"` here, then this reads its second line.
CPU_FILE="$(mktemp)"
trap 'rm -f "$CPU_FILE"' EXIT
children_cpu() {
    awk 'NR == 2 {
        n = split($0, f, " ")
        s = 0
        for (i = 1; i <= n; i++) { split(f[i], ms, "m"); s += ms[1] * 60 + ms[2] }
        printf "%d\n", s
    }' "$CPU_FILE"
}

status=0
declare -a ROWS
for target in "${TARGETS[@]}"; do
    dict="$(dict_for "$target")"
    args=(-max_total_time="$((MINUTES * 60))" -rss_limit_mb="$RSS_MB" -print_final_stats=1)
    [ -n "$dict" ] && args+=(-dict="$dict")
    [ "$JOBS" -gt 1 ] && args+=(-fork="$JOBS")
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    before=$(find "fuzz/artifacts/$target" -type f | wc -l)
    log="$LOGS/$target.log"
    echo "fuzz-campaign: $target for ${MINUTES} min${dict:+ with $dict}${JOBS:+, $JOBS job(s)}" >&2
    start=$(date +%s)
    times >"$CPU_FILE"
    cpu_start=$(children_cpu)
    set +e
    # Inputs that once crashed the target run first (fuzz/regressions/<target>/).
    regressions=()
    [ -d "fuzz/regressions/$target" ] && regressions=("regressions/$target")
    (cd fuzz && "${CARGO[@]}" fuzz run -O "$target" "corpus/$target" "${regressions[@]}" -- "${args[@]}") 2>&1 |
        stamp_lines >"$log"
    rc=${PIPESTATUS[0]}
    set -e
    end=$(date +%s)
    times >"$CPU_FILE"
    cpu=$(($(children_cpu) - cpu_start))
    read -r runs cov ft grew < <(summarize "$log" "$start")
    crashes=$(($(find "fuzz/artifacts/$target" -type f | wc -l) - before))
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        # Failed without leaving an input: a build error, or libFuzzer refused to start.
        crashes="?"
        echo "fuzz-campaign: $target failed (exit $rc) without a crash input; see $log" >&2
    fi
    if [ "$rc" -ne 0 ] || [ "$crashes" != 0 ]; then
        status=1
        grep -h "Test unit written to" "$log" | sed 's/^[0-9]* /  /' >&2 || true
    fi
    if [ "${FUZZ_NO_CMIN:-0}" != 1 ] && [ "$rc" -eq 0 ]; then
        n_before=$(find "fuzz/corpus/$target" -type f | wc -l)
        if (cd fuzz && "${CARGO[@]}" fuzz cmin -O "$target" "corpus/$target" -- -rss_limit_mb="$RSS_MB" \
            ${dict:+-dict="$dict"}) >"$LOGS/$target.cmin.log" 2>&1; then
            n_after=$(find "fuzz/corpus/$target" -type f | wc -l)
            echo "fuzz-campaign: $target corpus minimized: $n_before -> $n_after inputs" >&2
        else
            echo "fuzz-campaign: $target corpus minimization failed; see $LOGS/$target.cmin.log" >&2
        fi
    fi
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    ROWS+=("$(printf '%-22s %12s %7s %7s %8s %7s %8s %12s %7s' "$target" "$runs" "$cov" "$ft" \
        "$crashes" "$((end - start))" "$cpu" "$grew" "$corpus")")
done

printf '\n%-22s %12s %7s %7s %8s %7s %8s %12s %7s\n' target executions cov ft crashes seconds cpu-s \
    last-growth corpus
for row in "${ROWS[@]}"; do
    echo "$row"
done
echo "(cpu-s: CPU seconds the fuzzer and its build used, which is less than the wall seconds when"
echo " the cores were shared; last-growth: seconds into the run when cov last rose; logs in $LOGS)"
exit "$status"
