#!/usr/bin/env bash
# tcgw benchmark, one command:
#
#   bash bench/run.sh            the full run (about 10 minutes): results in bench/results/latest.*
#   bash bench/run.sh --smoke    every contender and scenario for about 2 s each, small connection
#                                counts (for CI): results in bench/results/smoke/latest.*
#   bash bench/run.sh [--smoke] [bench.py options]   e.g. --duration 30 --fast-conns 32,128,512
#                                --slow-conns 1000 --contenders nginx,tcgw --callgrind-calls 0
#                                (python3 bench/bench.py --help lists them all)
#
# On a fresh Debian 12 machine it installs what is missing (apt-get, through sudo when not root:
# the gateway's build dependencies, wrk, nginx with the echo module, gnuplot, valgrind, Node.js,
# and the official Node SDK into tests/node), builds the gateway in Release in $TCGW_BENCH_BUILD
# (default: build/; only the tcgw target and the benchmark programs, so a broken test does not
# stop a benchmark), makes throwaway dev certificates, then runs bench/bench.py: microbenchmarks,
# the callgrind profile and the side-by-side load runs. Everything listens on 127.0.0.1 only;
# every process it starts is stopped on exit, also on Ctrl-C or SIGTERM, by its own pid.
#
# TCGW_BENCH_REV=<git revision> benchmarks that committed revision instead of the work tree: it is
# exported with `git archive` into $TCGW_BENCH_BUILD/src and built there (default build dir then
# build-bench-rev/); the benchmark's own scripts are always this checkout's bench/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REV=${TCGW_BENCH_REV:-}
if [[ -n $REV ]]; then
    BUILD=${TCGW_BENCH_BUILD:-$ROOT/build-bench-rev}
    SRC=$BUILD/src
else
    BUILD=${TCGW_BENCH_BUILD:-$ROOT/build}
    SRC=$ROOT
fi

SMOKE=0
for a in "$@"; do
    [[ $a == --smoke ]] && SMOKE=1
done

DEBIAN_PACKAGES=(build-essential cmake pkg-config libmicrohttpd-dev libcurl4-openssl-dev libssl-dev
                 libjansson-dev libsodium-dev python3 openssl curl ca-certificates
                 wrk nginx libnginx-mod-http-echo gnuplot-nox valgrind)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_deps() {
    local missing=() p
    for p in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== run.sh: installing ${missing[*]}" >&2
        # Installing nginx must not start the system's nginx (port 80): services stay down while
        # apt-get runs, unless the machine already has a policy of its own.
        local policy=/usr/sbin/policy-rc.d made_policy=0
        if [ ! -e $policy ]; then
            printf '#!/bin/sh\nexit 101\n' | as_root tee $policy >/dev/null
            as_root chmod 755 $policy
            made_policy=1
        fi
        as_root apt-get update -q >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${missing[@]}" >&2 || { [ $made_policy = 1 ] && as_root rm -f $policy; exit 1; }
        [ $made_policy = 1 ] && as_root rm -f $policy
    fi
    if [ ! -d "$ROOT/tests/node/node_modules/tencentcloud-sdk-nodejs-common" ]; then
        echo "== run.sh: installing the Node SDK into tests/node" >&2
        (cd "$ROOT/tests/node" && npm install --no-audit --no-fund --loglevel=error >&2)
    fi
}

build() {
    if [[ -n $REV ]]; then
        local commit
        commit=$(git -C "$ROOT" rev-parse --verify "$REV^{commit}")
        echo "== run.sh: exporting $REV ($commit) into $SRC" >&2
        rm -rf "$SRC"
        mkdir -p "$SRC"
        # -m: the files get the time of extraction, not of their commit, so that make rebuilds
        # whatever an earlier revision built in this directory.
        git -C "$ROOT" archive "$commit" | tar -x -m -C "$SRC"
        echo "$commit" >"$SRC/.tcgw-bench-rev"
    fi
    echo "== run.sh: building tcgw (Release) from $SRC in $BUILD" >&2
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    if grep -q '^TCGW_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
        echo "run.sh: $BUILD is a sanitizer build; set TCGW_BENCH_BUILD to another directory" >&2
        exit 2
    fi
    cmake --build "$BUILD" --target tcgw -j "$(nproc)" >&2
    # The benchmark programs: from the top-level project when it has add_subdirectory(bench),
    # else as a project of their own against the tree just built.
    local targets
    targets=$(cmake --build "$BUILD" --target help 2>/dev/null || true)
    if grep -q 'tcgw-bench-micro' <<<"$targets"; then
        # The floors' programs: in trees whose bench/ has them (an older revision may not).
        FLOOR_TARGETS=$(grep -o -E 'tcgw-bench-(floor|curl)' <<<"$targets" | sort -u |
            tr '\n' ' ' || true)
        # shellcheck disable=SC2086
        cmake --build "$BUILD" --target tcgw-bench-micro tcgw-bench-spread $FLOOR_TARGETS \
            -j "$(nproc)" >&2
        BENCH_BIN=$BUILD/bench
    else
        BENCH_BIN=$BUILD/bench-standalone
        cmake -S "$ROOT/bench" -B "$BENCH_BIN" -DTCGW_BUILD_DIR="$BUILD" \
            -DTCGW_SOURCE_DIR="$SRC" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$BENCH_BIN" -j "$(nproc)" >&2
        FLOOR_TARGETS=$(cmake --build "$BENCH_BIN" --target help 2>/dev/null |
            grep -o -E 'tcgw-bench-(floor|curl)' | sort -u | tr '\n' ' ' || true)
    fi
}

FLOOR_TARGETS=
install_deps
build

# wrk, nginx and the contenders hold thousands of sockets at 2,000 connections.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tcgw-bench.XXXXXX")
PIDFILE=$WORK/pids
DRIVER=

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $DRIVER ]] && kill -0 "$DRIVER" 2>/dev/null; then
        kill -TERM "$DRIVER" 2>/dev/null || true
        wait "$DRIVER" 2>/dev/null || true
    fi
    # Whatever the driver could not stop (it was killed, say): only the pids it recorded.
    if [[ -f $PIDFILE ]]; then
        while read -r pid; do
            if kill -0 "$pid" 2>/dev/null; then
                kill -TERM "$pid" 2>/dev/null || true
                sleep 1
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$PIDFILE"
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RESULTS=$ROOT/bench/results
LIMIT=3600
if [[ $SMOKE == 1 ]]; then
    RESULTS=$ROOT/bench/results/smoke
    LIMIT=900
fi
# TCGW_SOURCE_DIR: the specs/ and certs/ of the sources built (tests/e2e/gw.py, harness.py).
export TCGW_BIN=$BUILD/tcgw TCGW_SOURCE_DIR=$SRC
# Only what this build made: a reused build directory may hold older programs.
FLOOR_BIN=
CURL_BIN=
[[ " $FLOOR_TARGETS " == *" tcgw-bench-floor "* ]] && FLOOR_BIN=$BENCH_BIN/tcgw-bench-floor
[[ " $FLOOR_TARGETS " == *" tcgw-bench-curl "* ]] && CURL_BIN=$BENCH_BIN/tcgw-bench-curl
echo "== run.sh: bench.py (at most $LIMIT s)" >&2
# The driver runs in the background so that the traps fire at once on a signal.
timeout --signal=TERM --kill-after=30 "$LIMIT" \
    python3 "$ROOT/bench/bench.py" --workdir "$WORK" --pidfile "$PIDFILE" \
    --results-dir "$RESULTS" --micro-bin "$BENCH_BIN/tcgw-bench-micro" \
    --spread-lib "$BENCH_BIN/libtcgw-bench-spread.so" \
    ${FLOOR_BIN:+--floor-bin "$FLOOR_BIN"} ${CURL_BIN:+--curl-bin "$CURL_BIN"} \
    --command "${REV:+TCGW_BENCH_REV=$REV }bash bench/run.sh $*" "$@" &
DRIVER=$!
set +e
wait "$DRIVER"
rc=$?
set -e
DRIVER=
exit "$rc"
