"""The overhead of idempotency, retries and deadlines, side by side: the same gateway and GAAP
simulator with the features off, on (calls without a ClientToken: the gateway generates one and
re-serialises the body), and on with a fresh caller ClientToken per call (a table entry per call).
Every call succeeds, so no retry is made: this is the cost on the happy path. Sequential calls on
one keep-alive connection (latency), then 8 threads (throughput). Not a test: prints one line per
configuration.

Run: cd tests/e2e && TCGW_BIN=... TCGW_SIM_BIN=... python3 resilience_overhead.py [CALLS]
"""
import http.client
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

import gw
import harness

HEADERS = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
           "X-TC-Action": "ModifyProxyConfiguration", "X-TC-Version": "2018-05-29"}
PARAMS = {"ProxyId": "link-4ftf12sb", "Concurrent": 2, "Bandwidth": 10}
counter = itertools.count()


def body(tokens):
    if tokens:
        return json.dumps(dict(PARAMS, ClientToken="bench-%d" % next(counter))).encode()
    return json.dumps(PARAMS).encode()


def latencies(port, n, tokens):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    for _ in range(n):
        b = body(tokens)
        t0 = time.perf_counter()
        conn.request("POST", "/", b, HEADERS)
        data = conn.getresponse().read()
        out.append(time.perf_counter() - t0)
        assert b'"Error"' not in data, data
    conn.close()
    return out


def throughput(port, tokens, seconds=3.0, threads=8):
    count = [0]
    lock = threading.Lock()
    end = time.time() + seconds

    def run():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while time.time() < end:
            conn.request("POST", "/", body(tokens), HEADERS)
            data = conn.getresponse().read()
            assert b'"Error"' not in data, data
            n += 1
        conn.close()
        with lock:
            count[0] += n

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return count[0] / seconds


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    tmp = tempfile.mkdtemp(prefix="tcgw-resilience-overhead-")
    sim = harness.Simulator().start(os.path.join(tmp, "sim"),
                                    {gw.DEV_SECRET_ID: gw.DEV_SECRET_KEY}, rate_limit=0)
    on = {"idempotency": {"replay_window_s": 300, "max_entries": 1 << 20},
          "retries": {"max_attempts": 3}, "deadlines": {"max_ms": 10000}}
    configs = [("off", {}, False), ("on", on, False), ("on+tokens", on, True)]
    try:
        for i, (name, extra, tokens) in enumerate(configs):
            d = os.path.join(tmp, "gw%d" % i)
            os.makedirs(d)
            g = gw.Gateway(d, sim.port, sim.ca_file, extra_config=extra).start()
            try:
                latencies(g.port, 50, tokens)  # warm up
                lat = sorted(latencies(g.port, calls, tokens))
                rps = throughput(g.port, tokens)
                print("features=%-9s calls=%d median_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
                      "calls_per_s_8_threads=%.0f"
                      % (name, calls, statistics.median(lat) * 1e3, lat[int(0.9 * calls)] * 1e3,
                         lat[int(0.99 * calls)] * 1e3, rps), flush=True)
            finally:
                g.stop()
    finally:
        sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
