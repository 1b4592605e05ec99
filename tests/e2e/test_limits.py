"""End to end: rate limits. The gateway answers RequestLimitExceeded itself and sends nothing
beyond the limit (the simulator's record proves it), one noisy caller cannot starve a quiet one
of the same credential, a call may wait for its token, and several gateways keep one account's
limit together through a real redis-server, falling back to 1/replicas of it when Redis stops.

Run: cd tests/e2e && TCGW_BIN=... TCGW_SIM_BIN=... python3 -m unittest -v test_limits
"""
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import unittest

import gw
import harness

DESCRIBE = "DescribeProxies"


def bearer_call(g, token, action=DESCRIBE, body=None):
    headers = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
               "X-TC-Action": action, "X-TC-Version": "2018-05-29"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    status, _, data = g.request("POST", "/", headers, json.dumps(body or {}).encode())
    return status, json.loads(data)


def hammer(g, token, seconds, threads, results, key, pace=None):
    """Sends calls from `threads` threads for `seconds` (each at most one per `pace` s); counts
    answers by error code (None: success) in results[key]."""
    lock = threading.Lock()
    counts = results.setdefault(key, {})
    end = time.time() + seconds

    def run():
        while True:
            start = time.time()
            if start >= end:
                return
            _, ans = bearer_call(g, token)
            code = gw.error_code(ans)
            with lock:
                counts[code] = counts.get(code, 0) + 1
            if pace is not None:
                rest = pace - (time.time() - start)
                if rest > 0:
                    time.sleep(rest)

    ts = [threading.Thread(target=run) for _ in range(threads)]
    return ts


class Redis:
    """A throwaway redis-server on a free loopback port: no persistence, its own directory."""

    def __init__(self, workdir):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = harness.free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def wait_for_log(g, pattern, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if re.search(pattern, g.read_log()):
            return
        time.sleep(0.05)
    raise AssertionError("no %r in the log:\n%s" % (pattern, g.read_log()))


class LimitsCase(gw.GatewaysCase):

    def limited_gateway(self, limits, callers=None, **kw):
        """A gateway whose callers identify with tokens; returns (gateway, {name: token})."""
        g = self.gateway(callers={}, unauthenticated_caller=None,
                         extra_config={"limits": limits}, **kw)
        tokens = {}
        for name in callers or ["app"]:
            out = gw.run_tcgw(["callers", "add", name, "--policy", "allow-all", "--config",
                               g.config_path]).stdout.decode()
            tokens[name] = [w for w in re.split(r"\s+", out)
                            if re.fullmatch(r"[A-Za-z0-9_-]{43}", w)][0]
        g.reload()
        return g, tokens

    def forwarded(self, action=DESCRIBE):
        return len([r for r in self.sim.records() if r.get("action") == action])


class Local(LimitsCase):

    def test_refused_beyond_the_limit_and_nothing_forwarded(self):
        g, tokens = self.limited_gateway({"actions": {"gaap.DescribeProxies":
                                                      {"rate": 1, "burst": 3}}})
        answers = [bearer_call(g, tokens["app"])[1] for _ in range(8)]
        codes = [gw.error_code(a) for a in answers]
        ok = codes.count(None)
        self.assertIn(ok, (3, 4), codes)  # the burst, and at most one refilled
        refused = [a for a in answers if gw.error_code(a) == "RequestLimitExceeded"]
        self.assertEqual(len(refused), 8 - ok)
        message = refused[0]["Response"]["Error"]["Message"]
        self.assertIn("gaap.DescribeProxies", message)
        self.assertIn("1 calls per second (burst 3)", message)
        self.assertRegex(message, r"Retry after \d+ ms")
        self.assertIn("not sent to Tencent Cloud", message)
        self.assertEqual(self.forwarded(), ok)
        # Another action has its own bucket (the default 20/s).
        status, ans = bearer_call(g, tokens["app"], "DescribeAccessRegionsByDestRegion",
                                  {"DestRegion": "SouthChina"})
        self.assertNotEqual(gw.error_code(ans), "RequestLimitExceeded", ans)
        # The refusal is in the call log line, as any refusal.
        self.assertIn("RequestLimitExceeded", g.read_log())

    def test_forwarded_rate_stays_within_the_limit_under_load(self):
        rate, burst = 20, 20
        g, tokens = self.limited_gateway({"actions": {"gaap.DescribeProxies":
                                                      {"rate": rate, "burst": burst}}})
        results = {}
        start = time.time()
        ts = hammer(g, tokens["app"], 3.0, 6, results, "app")
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        elapsed = time.time() - start
        sent = self.forwarded()
        counts = results["app"]
        self.assertEqual(sent, counts.get(None, 0), counts)
        self.assertLessEqual(sent, rate * elapsed + burst + 1, (sent, elapsed, counts))
        self.assertGreaterEqual(sent, rate * 2.5, (sent, elapsed, counts))
        self.assertGreater(counts.get("RequestLimitExceeded", 0), 0, counts)
        print("\n  load: %d calls in %.2f s, %d forwarded (limit %d/s, burst %d)"
              % (sum(counts.values()), elapsed, sent, rate, burst))

    def test_fair_share_quiet_caller_is_not_starved(self):
        """Two callers of one credential at 20/s: noisy sends as fast as 4 threads can (far
        more than 10x quiet), quiet 5 calls/s, below its fair share of 10/s."""
        g, tokens = self.limited_gateway(
            {"actions": {"gaap.DescribeProxies": {"rate": 20, "burst": 20}}},
            callers=["noisy", "quiet"])
        results = {}
        seconds = 4.0
        start = time.time()
        ts = hammer(g, tokens["noisy"], seconds, 4, results, "noisy")
        ts += hammer(g, tokens["quiet"], seconds, 1, results, "quiet", pace=0.2)
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        elapsed = time.time() - start
        quiet, noisy = results["quiet"], results["noisy"]
        asked = sum(quiet.values())
        print("\n  fairness: quiet %d/%d admitted, noisy %d/%d admitted in %.2f s"
              % (quiet.get(None, 0), asked, noisy.get(None, 0), sum(noisy.values()), elapsed))
        self.assertGreater(sum(noisy.values()), 10 * asked, results)
        self.assertGreaterEqual(quiet.get(None, 0), 0.8 * asked, results)
        total = quiet.get(None, 0) + noisy.get(None, 0)
        self.assertEqual(self.forwarded(), total)
        self.assertLessEqual(total, 20 * elapsed + 20 + 1, results)
        # The noisy caller's refusals say whose share was used.
        self.assertIn("RequestLimitExceeded", noisy, results)

    def test_caller_quota(self):
        g, tokens = self.limited_gateway({"callers": {"bot": {"rate": 1, "burst": 2}}},
                                         callers=["bot", "app"])
        codes = [gw.error_code(bearer_call(g, tokens["bot"])[1]) for _ in range(4)]
        self.assertEqual(codes[:2], [None, None], codes)
        self.assertIn("RequestLimitExceeded", codes[2:])
        _, ans = bearer_call(g, tokens["bot"])
        self.assertIn('caller "bot"', ans["Response"]["Error"]["Message"])
        self.assertIn("limits.callers", ans["Response"]["Error"]["Message"])
        # The quota is bot's own: app is not held by it.
        self.assertIsNone(gw.error_code(bearer_call(g, tokens["app"])[1]))

    def test_short_wait_instead_of_refusal(self):
        """4/s with burst 1 and max_wait_ms 600: of four calls at once, the first goes at once,
        the next two wait 250 and 500 ms for their tokens, the fourth (750 ms) is refused."""
        g, tokens = self.limited_gateway({"actions": {"gaap.DescribeProxies":
                                                      {"rate": 4, "burst": 1}},
                                          "max_wait_ms": 600})
        out = []
        lock = threading.Lock()
        barrier = threading.Barrier(4)

        def one():
            barrier.wait()
            t0 = time.time()
            _, ans = bearer_call(g, tokens["app"])
            with lock:
                out.append((gw.error_code(ans), time.time() - t0))

        ts = [threading.Thread(target=one) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        codes = sorted(str(c) for c, _ in out)
        self.assertEqual(codes, ["None", "None", "None", "RequestLimitExceeded"], out)
        slowest_ok = max(d for c, d in out if c is None)
        self.assertGreaterEqual(slowest_ok, 0.4, out)
        self.assertEqual(self.forwarded(), 3)

    def test_off_without_the_section(self):
        g = self.gateway()
        for _ in range(30):
            status, ans = g.call(DESCRIBE, {})
            self.assertIsNone(gw.error_code(ans), ans)
        self.assertNotIn("event=limits", g.read_log())


@unittest.skipUnless(shutil.which("redis-server"), "redis-server is not installed")
class Shared(LimitsCase):

    def setUp(self):
        super().setUp()
        self.redis = Redis(os.path.join(self.dir, "redis")).start()
        self.addCleanup(self.redis.stop)

    def redis_limits(self, rate, replicas):
        return {"actions": {"gaap.DescribeProxies": {"rate": rate, "burst": rate}},
                "backend": "redis",
                "redis": {"address": "127.0.0.1", "port": self.redis.port,
                          # Generous for a sanitized build on a busy machine; a late answer
                          # only means fallback limits, which the tests below also bound.
                          "replicas": replicas, "timeout_ms": 250}}

    def gateways(self, n, rate):
        out = []
        for _ in range(n):
            g, tokens = self.limited_gateway(self.redis_limits(rate, n))
            wait_for_log(g, r"event=limits_backend backend=redis state=shared")
            out.append((g, tokens["app"]))
        return out

    def load(self, gws, seconds, threads=3):
        results = {}
        ts = []
        for i, (g, token) in enumerate(gws):
            ts += hammer(g, token, seconds, threads, results, i)
        start = time.time()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return results, time.time() - start

    def test_three_gateways_keep_one_account_limit(self):
        rate = 10
        gws = self.gateways(3, rate)
        self.sim.clear_records()
        results, elapsed = self.load(gws, 3.0, threads=2)
        sent = self.forwarded()
        admitted = sum(r.get(None, 0) for r in results.values())
        print("\n  redis: 3 gateways, %d calls, %d forwarded in %.2f s (account limit %d/s)"
              % (sum(sum(r.values()) for r in results.values()), sent, elapsed, rate))
        self.assertEqual(sent, admitted, results)
        # Three local limits would let 3 * rate through; Redis keeps the account's one.
        self.assertLessEqual(sent, rate * elapsed + rate + 1, results)
        self.assertGreaterEqual(sent, rate * 2, results)
        for g, _ in gws:
            self.assertIn("state=shared", g.read_log())

    def test_redis_stops_and_comes_back(self):
        rate = 10
        gws = self.gateways(2, rate)
        self.redis.stop()
        for g, _ in gws:
            wait_for_log(g, r"event=limits_backend backend=redis state=fallback")
        # Serving on: each gateway keeps 1/2 of the limit, together still the account's.
        self.sim.clear_records()
        results, elapsed = self.load(gws, 2.0)
        sent = self.forwarded()
        print("\n  redis down: %d forwarded in %.2f s by 2 gateways at 1/2 each (limit %d/s)"
              % (sent, elapsed, rate))
        self.assertGreater(sent, 0, results)
        self.assertLessEqual(sent, rate * elapsed + rate + 2, results)
        # Refusals in fallback say so.
        msgs = [bearer_call(g, t)[1] for g, t in gws for _ in range(8)]
        texts = [m["Response"]["Error"]["Message"] for m in msgs
                 if gw.error_code(m) == "RequestLimitExceeded"]
        self.assertTrue(any("unreachable" in t for t in texts), texts)
        # Redis again on the same port: the gateways reconnect (backoff at most 5 s).
        self.redis.start()
        for g, _ in gws:
            deadline = time.time() + 15
            while time.time() < deadline and g.read_log().count("state=shared") < 2:
                time.sleep(0.1)
            self.assertEqual(g.read_log().count("state=shared"), 2, g.read_log())
        self.sim.clear_records()
        results, elapsed = self.load(gws, 2.0)
        sent = self.forwarded()
        self.assertLessEqual(sent, rate * elapsed + rate + 1, results)
        self.assertGreater(sent, 0, results)

    def test_unreachable_at_start_serves_with_fallback(self):
        port = self.redis.port
        self.redis.stop()
        limits = self.redis_limits(4, 2)
        limits["redis"]["port"] = port
        g, tokens = self.limited_gateway(limits)
        wait_for_log(g, r"state=fallback")
        codes = [gw.error_code(bearer_call(g, tokens["app"])[1]) for _ in range(6)]
        # 4/s over 2 replicas: 2 per gateway at once.
        self.assertEqual(codes.count(None), 2, codes)


if __name__ == "__main__":
    unittest.main()
