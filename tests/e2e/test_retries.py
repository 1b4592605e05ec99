"""Safe retries and deadlines, against a scripted upstream that fails on command: a read retried
after a reset and after a 5xx succeeds; a write without ClientToken is never sent twice (counted
on the upstream); a write with a ClientToken is retried, signed again; a retry budget stops
retries under an outage; and a caller's deadline (X-Tcgw-Timeout-Ms) is honoured."""
import json
import os
import threading
import time
import unittest

import gw
import harness

OK = (200, "OK", {"Content-Type": "application/json"},
      b'{"Response":{"TotalCount":0,"ProxySet":[],"RequestId":"ok-1"}}')
E503 = (503, "Service Unavailable", {"Content-Type": "text/plain"}, b"overloaded")
THROTTLED = (200, "OK", {"Content-Type": "application/json"},
             b'{"Response":{"Error":{"Code":"RequestLimitExceeded","Message":"slow down"},'
             b'"RequestId":"thr-1"}}')
MODIFY = {"ProxyId": "link-4ftf12sb", "Concurrent": 2, "Bandwidth": 10}
CERT = {"CertificateType": 2, "CertificateContent": "c"}
RETRIES = {"retries": {"max_attempts": 3, "base_ms": 20, "cap_ms": 100, "budget_min": 10}}


def plan(*answers):
    """A script that answers each request with the next answer, then OK for ever."""
    queue = list(answers)
    lock = threading.Lock()

    def script(request):
        with lock:
            a = queue.pop(0) if queue else OK
        if isinstance(a, tuple) and a and a[0] == "sleep":
            time.sleep(a[1])
            return OK
        return a
    return script


def body_of(request):
    return json.loads(request.partition(b"\r\n\r\n")[2])


def header_of(request, name):
    for line in request.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower().encode():
            return v.strip().decode()
    return None


class RetriesTest(gw.GatewaysCase):
    def test_read_retried_after_reset_and_5xx(self):
        up = self.scripted(plan("close", E503))
        g = self.gateway(upstream_port=up.port, extra_config=RETRIES)
        status, answer = g.call("DescribeProxies", {})
        self.assertEqual(status, 200, answer)
        self.assertEqual(answer["Response"]["RequestId"], "ok-1", answer)
        self.assertEqual(len(up.requests), 3)
        self.assertIn("attempts=3 retry_why=5xx", g.read_log())

    def test_read_retried_after_throttling(self):
        up = self.scripted(plan(THROTTLED))
        g = self.gateway(upstream_port=up.port, extra_config=RETRIES)
        status, answer = g.call("DescribeProxies", {})
        self.assertEqual(answer["Response"]["RequestId"], "ok-1", answer)
        self.assertEqual(len(up.requests), 2)

    def test_last_answer_when_attempts_run_out(self):
        up = self.scripted(plan(E503, E503, E503, E503))
        g = self.gateway(upstream_port=up.port, extra_config=RETRIES)
        status, _, data = g.request("POST", "/", {
            "Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
            "X-TC-Action": "DescribeProxies", "X-TC-Version": "2018-05-29"}, b"{}")
        self.assertEqual((status, data), (503, b"overloaded"))
        self.assertEqual(len(up.requests), 3)

    def test_write_without_client_token_is_never_retried(self):
        # CreateCertificate has no ClientToken: a reset after it was sent must not be repeated.
        up = self.scripted(plan("close", E503))
        g = self.gateway(upstream_port=up.port, extra_config=RETRIES)
        status, answer = g.call("CreateCertificate", CERT)
        self.assertEqual(gw.error_code(answer), "InternalError.UpstreamFailure", answer)
        self.assertIn("may have reached", answer["Response"]["Error"]["Message"])
        self.assertEqual(len(up.requests), 1)  # at most once
        self.assertIn("no_retry=unsafe", g.read_log())
        status, _, data = g.request("POST", "/", {
            "Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
            "X-TC-Action": "CreateCertificate", "X-TC-Version": "2018-05-29"},
            json.dumps(CERT).encode())
        self.assertEqual(status, 503)
        self.assertEqual(len(up.requests), 2)

    def test_write_with_client_token_is_retried_and_signed_again(self):
        up = self.scripted(plan(E503, "close"))
        g = self.gateway(upstream_port=up.port, extra_config=RETRIES)
        body = dict(MODIFY, ClientToken="tok-retry-1")
        t0 = time.time()
        status, answer = g.call("ModifyProxyConfiguration", body)
        self.assertEqual(answer["Response"]["RequestId"], "ok-1", answer)
        self.assertEqual(len(up.requests), 3)
        bodies = [body_of(r) for r in up.requests]
        self.assertTrue(all(b == body for b in bodies), bodies)
        # Each attempt is signed when it is sent: a fresh timestamp and signature each time.
        for r in up.requests:
            self.assertIsNotNone(header_of(r, "X-TC-Timestamp"))
            self.assertTrue(header_of(r, "Authorization").startswith("TC3-HMAC-SHA256 "))
        self.assertLess(time.time() - t0, 5)

    def test_generated_token_makes_a_write_retryable(self):
        up = self.scripted(plan("close"))
        g = self.gateway(upstream_port=up.port,
                         extra_config=dict(RETRIES, idempotency={"replay_window_s": 60}))
        status, answer = g.call("ModifyProxyConfiguration", MODIFY)
        self.assertEqual(answer["Response"]["RequestId"], "ok-1", answer)
        self.assertEqual(len(up.requests), 2)
        tokens = [body_of(r).get("ClientToken") for r in up.requests]
        self.assertTrue(tokens[0] and tokens[0] == tokens[1], tokens)

    def test_retries_off_by_default(self):
        up = self.scripted(plan("close"))
        g = self.gateway(upstream_port=up.port)
        status, answer = g.call("DescribeProxies", {})
        self.assertEqual(gw.error_code(answer), "InternalError.UpstreamFailure", answer)
        self.assertEqual(len(up.requests), 1)

    def test_budget_stops_retries_under_an_outage(self):
        up = self.scripted(lambda request: E503)
        cfg = {"threads": 1, "retries": {"max_attempts": 3, "base_ms": 1, "cap_ms": 2,
                                         "budget_ratio": 0.1, "budget_min": 2,
                                         "budget_window_s": 60}}
        g = self.gateway(upstream_port=up.port, extra_config=cfg)
        calls = 40
        for _ in range(calls):
            status, _, _ = g.request("POST", "/", {
                "Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
                "X-TC-Action": "DescribeProxies", "X-TC-Version": "2018-05-29"}, b"{}")
            self.assertEqual(status, 503)
        retries = len(up.requests) - calls
        # Without a budget: 2 per call (80). With it: at most 2 + 10% of the calls.
        self.assertGreater(retries, 0)
        self.assertIn("no_retry=budget", g.read_log())
        self.assertLessEqual(retries, 2 + calls // 10 + 1)

    def test_deadline_header_honoured(self):
        up = self.scripted(lambda request: None)  # never answers
        g = self.gateway(upstream_port=up.port,
                         extra_config=dict(RETRIES, deadlines={"max_ms": 5000}))
        t0 = time.time()
        status, answer = g.call("DescribeProxies", {}, extra_headers={"X-Tcgw-Timeout-Ms": "400"})
        took = time.time() - t0
        self.assertEqual(gw.error_code(answer), "InternalError.UpstreamTimeout", answer)
        self.assertIn("may have reached", answer["Response"]["Error"]["Message"])
        self.assertLess(took, 1.5, took)
        self.assertGreaterEqual(took, 0.35, took)

    def test_deadline_capped_by_config(self):
        up = self.scripted(lambda request: None)
        g = self.gateway(upstream_port=up.port, extra_config={"deadlines": {"max_ms": 300}})
        t0 = time.time()
        status, answer = g.call("DescribeProxies", {}, extra_headers={"X-Tcgw-Timeout-Ms": "60000"})
        self.assertEqual(gw.error_code(answer), "InternalError.UpstreamTimeout", answer)
        self.assertLess(time.time() - t0, 1.5)

    def test_deadline_bounds_retries(self):
        up = self.scripted(lambda request: E503)
        cfg = {"retries": {"max_attempts": 10, "base_ms": 300, "cap_ms": 300}}
        g = self.gateway(upstream_port=up.port, extra_config=cfg)
        t0 = time.time()
        status, _, data = g.request("POST", "/", {
            "Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
            "X-TC-Action": "DescribeProxies", "X-TC-Version": "2018-05-29",
            "X-Tcgw-Timeout-Ms": "500"}, b"{}")
        self.assertEqual(status, 503)
        self.assertLess(time.time() - t0, 0.9)
        self.assertLess(len(up.requests), 10)

    def test_deadline_bounds_a_rate_limit_wait(self):
        up = self.scripted(plan())
        limits = {"actions": {"gaap.DescribeProxies": {"rate": 0.5, "burst": 1}},
                  "max_wait_ms": 5000}
        g = self.gateway(upstream_port=up.port, extra_config={"limits": limits, "threads": 1})
        _, first = g.call("DescribeProxies", {})
        self.assertNotIn("Error", first["Response"], first)
        t0 = time.time()
        _, second = g.call("DescribeProxies", {}, extra_headers={"X-Tcgw-Timeout-Ms": "300"})
        took = time.time() - t0
        self.assertEqual(gw.error_code(second), "RequestLimitExceeded", second)
        self.assertLess(took, 1.0)  # not the ~2 s the token would take
        self.assertEqual(len(up.requests), 1)

    def test_bad_deadline_header_refused(self):
        up = self.scripted(plan())
        g = self.gateway(upstream_port=up.port)
        for value in ("0", "abc", "-5", "1234567890"):
            status, answer = g.call("DescribeProxies", {}, extra_headers={"X-Tcgw-Timeout-Ms": value})
            self.assertEqual(gw.error_code(answer), "InvalidParameterValue", (value, answer))
        self.assertEqual(len(up.requests), 0)



class SimulatorFaultsTest(gw.GatewaysCase):
    """The same against the GAAP simulator with a fault plan (tests/sim/faults.h): what was
    applied is read from the simulator's own record."""

    def faulty_sim(self, plan):
        os.environ["TCGW_SIM_FAULTS"] = plan
        try:
            sim = harness.Simulator().start(os.path.join(self.dir, "sim-%d" % next(self.names)),
                                            {gw.DEV_SECRET_ID: gw.DEV_SECRET_KEY}, rate_limit=0)
        finally:
            del os.environ["TCGW_SIM_FAULTS"]
        self.addCleanup(sim.stop)
        return sim

    def gateway_for(self, sim, **extra):
        return self.gateway(upstream_port=sim.port, ca=sim.ca_file, extra_config=extra)

    def modify_records(self, sim):
        return [r for r in sim.records() if r.get("action") == "ModifyProxyConfiguration"]

    def test_write_applied_then_reset_is_not_sent_again_without_token(self):
        sim = self.faulty_sim("ModifyProxyConfiguration:reset:1")
        g = self.gateway_for(sim, retries=RETRIES["retries"])
        _, answer = g.call("ModifyProxyConfiguration", dict(MODIFY, Bandwidth=20))
        self.assertEqual(gw.error_code(answer), "InternalError.UpstreamFailure", answer)
        records = self.modify_records(sim)
        self.assertEqual(len(records), 1)  # applied once, sent once: at most once
        self.assertEqual(records[0].get("fault"), "reset")
        self.assertIsNone(records[0]["error_code"])  # the simulator did apply it

    def test_write_with_generated_token_retried_and_applied_once(self):
        sim = self.faulty_sim("ModifyProxyConfiguration:reset:1")
        g = self.gateway_for(sim, retries=RETRIES["retries"], idempotency={})
        _, answer = g.call("ModifyProxyConfiguration", dict(MODIFY, Bandwidth=20))
        self.assertNotIn("Error", answer["Response"], answer)
        records = self.modify_records(sim)
        self.assertEqual(len(records), 2)
        tokens = {json.loads(sim.record_body_bytes(r))["ClientToken"] for r in records}
        self.assertEqual(len(tokens), 1, tokens)  # the same token: Tencent applies it once
        self.assertEqual(records[0].get("fault"), "reset")
        _, proxies = g.call("DescribeProxies", {"ProxyIds": ["link-4ftf12sb"]})
        self.assertEqual(proxies["Response"]["ProxySet"][0]["Bandwidth"], 20, proxies)

    def test_read_after_5xx_and_throttling(self):
        sim = self.faulty_sim("DescribeProxies:5xx:1,DescribeProxies:throttle:1")
        g = self.gateway_for(sim, retries=RETRIES["retries"])
        _, answer = g.call("DescribeProxies", {})
        self.assertNotIn("Error", answer["Response"], answer)
        faults = [r.get("fault") for r in sim.records()]
        self.assertEqual(faults, ["5xx", "throttle", None])

    def test_malformed_answer_not_retried(self):
        sim = self.faulty_sim("*:malformed:1")
        g = self.gateway_for(sim, retries=RETRIES["retries"])
        status, _, data = g.request("POST", "/", {
            "Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
            "X-TC-Action": "DescribeProxies", "X-TC-Version": "2018-05-29"}, b"{}")
        self.assertEqual(status, 200)
        self.assertRaises(ValueError, json.loads, data)  # passed on unchanged
        self.assertEqual(len(sim.records()), 1)


if __name__ == "__main__":
    unittest.main()
