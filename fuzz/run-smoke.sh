#!/usr/bin/env bash
# Smoke-run every fuzz target for a bounded time: build them all in one instrumented release
# build, then fuzz each for SECONDS (default 20) from its committed seeds
# (fuzz/corpus-seed/TARGET) plus whatever an earlier run left in fuzz/corpus/TARGET. Prints one
# summary line per target and the time of each phase; exits non-zero if any target crashed,
# hung or failed to build; the failing input is in fuzz/artifacts/TARGET/.
#
# Usage: fuzz/run-smoke.sh [--fast-build] [SECONDS]
#   --fast-build  compile with 16 codegen units instead of cargo-fuzz's 1: a shorter build,
#                 somewhat slower targets, the right trade for a few seconds per target
#                 (CI: `--fast-build 5`).
# Works on stable Rust: libFuzzer's coverage instrumentation needs no sanitizer (`-s none`).
# Installs cargo-fuzz when it is missing; needs a C++ compiler for libFuzzer itself.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: $0 [--fast-build] [SECONDS]   (seconds per target, default 20)" >&2
    exit 2
}

# The same flags for the build and for every run, so that `cargo fuzz run` finds the targets
# built and does not build them again.
build=(-s none)
seconds=20
for arg in "$@"; do
    case $arg in
    --fast-build) build+=(--codegen-units 16) ;;
    *[!0-9]* | '') usage ;;
    *) seconds=$arg ;;
    esac
done
((seconds >= 1)) || usage

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
if ! command -v c++ >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
        echo "installing g++ (libFuzzer is C++)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++
    else
        echo "a C++ compiler (c++) is needed to build libFuzzer" >&2
        exit 1
    fi
fi

targets=$(cargo fuzz list)
build_start=$SECONDS
cargo fuzz build "${build[@]}"
build_time=$((SECONDS - build_start))

logs=fuzz/target/smoke-logs
mkdir -p "$logs"
failed=0
start=$SECONDS
for target in $targets; do
    mkdir -p "fuzz/corpus/$target" "fuzz/corpus-seed/$target"
    log="$logs/$target.log"
    status=0
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a leak or an unbounded buffer.
    cargo fuzz run "${build[@]}" "$target" "fuzz/corpus/$target" "fuzz/corpus-seed/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    corpus=$(grep -o 'corp: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    if ((status == 0)); then
        printf '%-16s ok     %8s runs %8s exec/s  cov %-6s corpus %s\n' \
            "$target" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${corpus:-?}"
    else
        failed=1
        artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | cut -d' ' -f5)
        printf '%-16s FAILED (exit %s) %s; log: %s\n' \
            "$target" "$status" "${artifact:-no artifact}" "$log"
        grep -m 3 -E 'panicked at|ERROR: libFuzzer' -A 2 "$log" | sed 's/^/    /' || true
    fi
done
echo "smoke run: build ${build_time} s, then $((SECONDS - start)) s for $(wc -w <<<"$targets") targets, ${seconds} s each"
exit "$failed"
