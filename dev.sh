#!/usr/bin/env bash
# tcgw developer entry point.
#   bash dev.sh demo   install what is missing, build, send the seed call through the gateway, and
#                      keep the simulator and the gateway running to try (Ctrl-C stops both);
#                      --once stops after the seed call
#   bash dev.sh test   install what is missing, build (plain and sanitized), run every test, a
#                      libFuzzer smoke of each target and a smoke of the benchmark harness
#   bash dev.sh build  build only
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD

DEBIAN_PACKAGES=(build-essential cmake pkg-config libmicrohttpd-dev libcurl4-openssl-dev libssl-dev
                 libjansson-dev libsodium-dev libgnutls28-dev libcmocka-dev python3 openssl curl
                 ca-certificates clang libclang-rt-14-dev libhiredis-dev redis-server rsyslog prometheus)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_deps() {
    local missing=()
    for p in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing: ${missing[*]}"
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
}

build() { # build DIR [cmake options...]
    local dir=$1; shift
    cmake -S "$ROOT" -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}

node_sdk() {
    # The official Tencent Cloud Node SDK, the reference signer and client of the SDK tests.
    (cd tests/node && { [ -d node_modules/tencentcloud-sdk-nodejs-common ] && [ -d node_modules/tencentcloud-sdk-nodejs ] || npm install --no-audit --no-fund --loglevel=error; })
}

cmd_test() {
    install_deps
    node_sdk
    build build -DCMAKE_BUILD_TYPE=Release
    build build-asan -DCMAKE_BUILD_TYPE=Debug -DTCGW_SANITIZE=ON
    echo "== tests (release build, as shipped)"
    ctest --test-dir build --output-on-failure -j 2
    echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer build)"
    ctest --test-dir build-asan --output-on-failure -j 2
    fuzz_smoke "${TCGW_FUZZ_SECONDS:-30}"
    echo "== benchmark smoke (every contender and scenario for 2 s; figures are not judged)"
    bash bench/run.sh --smoke >build/bench-smoke.log 2>&1 || { tail -60 build/bench-smoke.log >&2; return 1; }
    grep -E "^\| (fast|slow)" bench/results/smoke/latest.md | head -20 || true
}

fuzz_smoke() { # SECONDS: each libFuzzer target explores that long from its saved corpus
    CC=clang cmake -S "$ROOT" -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DTCGW_FUZZ=ON >/dev/null
    cmake --build build-fuzz -j "$(nproc)" --target fuzz_request fuzz_apispec fuzz_config
    local t work
    for t in request apispec config; do
        work=$(mktemp -d)
        echo "== fuzz $t (${1} s, ASan+UBSan)"
        if ! (cd "$work" && "$ROOT/build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$1" -timeout=10 \
                -rss_limit_mb=2048 -dict="$ROOT/tests/fuzz/json.dict" -print_final_stats=1 \
                "$work" "$ROOT/tests/fuzz/corpus/$t" >"$work.log" 2>&1); then
            tail -40 "$work.log" >&2
            echo "fuzz $t failed; the input is kept in $work" >&2
            return 1
        fi
        grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "$work.log" || true
        rm -rf "$work" "$work.log"
    done
}

cmd_demo() {
    install_deps
    # The demo prints a Node SDK command to try; without the SDK it still runs, and says how to get it.
    node_sdk || echo "== could not install the Node SDK (tests/node); the demo goes on without it"
    build build -DCMAKE_BUILD_TYPE=Release
    exec python3 tests/e2e/demo.py --build build "$@"
}

case "${1:-}" in
    test) cmd_test ;;
    demo) shift; cmd_demo "$@" ;;
    build) install_deps; build build -DCMAKE_BUILD_TYPE=Release ;;
    *) echo "usage: bash dev.sh demo [--once]|test|build" >&2; exit 2 ;;
esac
