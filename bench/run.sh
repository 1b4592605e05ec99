#!/usr/bin/env bash
# tcgw load benchmark: tcgw-sim (no rate limit) and a release gateway on loopback, wrk in front.
#
#   bench/run.sh [bench.py options]      e.g. --duration 5, --conns 32,256,1024
#
# Builds a Release tree in $TCGW_BENCH_BUILD (default build-bench/) when its binaries are
# missing, then runs bench/bench.py: the seed call through the simulator and a refused call that
# never leaves the gateway, each with wrk -t2 -c32 and -c256 for 10 s. About 60 s in all.
# Every process it starts is stopped on exit, also on Ctrl-C or SIGTERM.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${TCGW_BENCH_BUILD:-$ROOT/build-bench}

command -v wrk >/dev/null || { echo "run.sh: wrk is not installed (apt-get install wrk)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "run.sh: python3 is required" >&2; exit 2; }

if [[ ! -x $BUILD/tcgw || ! -x $BUILD/tests/tcgw-sim ]]; then
    echo "run.sh: building a Release tree in $BUILD" >&2
    # Warnings are the test builds' business; a benchmark build must not fail on them.
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" >/dev/null
fi
if grep -q '^TCGW_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
    echo "run.sh: $BUILD is a sanitizer build; benchmark a Release build" >&2
    exit 2
fi

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

export TCGW_BIN=$BUILD/tcgw TCGW_SIM_BIN=$BUILD/tests/tcgw-sim TCGW_SOURCE_DIR=$ROOT
# The driver runs in the background so that the traps fire at once on a signal.
python3 "$ROOT/bench/bench.py" --workdir "$WORK" --pidfile "$PIDFILE" "$@" &
DRIVER=$!
set +e
wait "$DRIVER"
rc=$?
set -e
DRIVER=
exit "$rc"
