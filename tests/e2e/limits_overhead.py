"""The overhead of the limit stage, side by side: the same gateway and simulator with limits off,
local limits, and limits in a real redis-server, each limit far above the load so every call is
admitted and forwarded. Sequential calls on one keep-alive connection (latency), then 8 threads
(throughput). Not a test: prints one line per configuration.

Run: cd tests/e2e && TCGW_BIN=... TCGW_SIM_BIN=... python3 limits_overhead.py [CALLS]
"""
import http.client
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
import test_limits

BODY = json.dumps({"ProxyId": "link-4ftf12sb", "Concurrent": "2", "Bandwidth": "10"}).encode()
HEADERS = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
           "X-TC-Action": "ModifyProxyConfiguration", "X-TC-Version": "2018-05-29"}


def latencies(port, n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", "/", BODY, HEADERS)
        data = conn.getresponse().read()
        out.append(time.perf_counter() - t0)
        assert b'"Error"' not in data, data
    conn.close()
    return out


def throughput(port, seconds=3.0, threads=8):
    count = [0]
    lock = threading.Lock()
    end = time.time() + seconds

    def run():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while time.time() < end:
            conn.request("POST", "/", BODY, HEADERS)
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
    tmp = tempfile.mkdtemp(prefix="tcgw-limits-overhead-")
    sim = harness.Simulator().start(os.path.join(tmp, "sim"),
                                    {gw.DEV_SECRET_ID: gw.DEV_SECRET_KEY}, rate_limit=0)
    redis = test_limits.Redis(os.path.join(tmp, "redis")).start()
    high = {"actions": {"gaap.ModifyProxyConfiguration": {"rate": 1000000, "burst": 1000000}}}
    configs = [
        ("off", None),
        ("local", high),
        ("redis", dict(high, backend="redis",
                       redis={"address": "127.0.0.1", "port": redis.port, "timeout_ms": 1000})),
    ]
    try:
        for i, (name, limits) in enumerate(configs):
            d = os.path.join(tmp, "gw%d" % i)
            os.makedirs(d)
            extra = {"limits": limits} if limits else {}
            g = gw.Gateway(d, sim.port, sim.ca_file, extra_config=extra).start()
            try:
                if name == "redis":
                    test_limits.wait_for_log(g, "state=shared")
                latencies(g.port, 50)  # warm up
                lat = sorted(latencies(g.port, calls))
                rps = throughput(g.port)
                print("limits=%-5s calls=%d median_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
                      "calls_per_s_8_threads=%.0f"
                      % (name, calls, statistics.median(lat) * 1e3, lat[int(0.9 * calls)] * 1e3,
                         lat[int(0.99 * calls)] * 1e3, rps), flush=True)
            finally:
                g.stop()
    finally:
        redis.stop()
        sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
