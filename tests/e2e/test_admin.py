"""End to end: the admin listener (GET /healthz, /readyz, /metrics) of a gateway in front of the
simulator: readiness and its reasons (Redis away, Tencent's clock off), exact call counters after
a mix of allowed, denied and refused calls, and the exposition checked by Prometheus's own
`promtool check metrics`."""
import http.client
import json
import os
import re
import shutil
import subprocess
import unittest

import gw
import harness

READS_ONLY = {"version": "2.0", "statement": [
    {"sid": "reads", "effect": "allow", "action": "gaap:Describe*", "resource": "*"}]}
MODIFY = "ModifyProxyConfiguration"


def admin_get(g, path, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", g.admin_port, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def admin_port(g):
    for line in g.read_log().splitlines():
        if line.startswith("{") and json.loads(line)["event"] == "listening":
            return json.loads(line)["admin_port"]
    m = re.search(r"event=listening .*\badmin_port=(\d+)", g.read_log())
    assert m, g.read_log()
    return int(m.group(1))


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text):
    """{(name, frozenset(labels)): value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def calls(s, **labels):
    want = set(labels.items())
    return sum(v for (name, ls), v in s.items()
               if name == "tcgw_calls_total" and want <= set(ls))


class Admin(gw.GatewaysCase):

    def start(self, **kw):
        extra = kw.pop("extra_config", {})
        extra.setdefault("admin", {"listen_port": 0})
        g = self.gateway(extra_config=extra, **kw)
        g.admin_port = admin_port(g)
        return g

    def test_health_and_ready(self):
        g = self.start()
        status, headers, body = admin_get(g, "/healthz")
        self.assertEqual((status, json.loads(body)), (200, {"status": "ok"}))
        status, headers, body = admin_get(g, "/readyz")
        doc = json.loads(body)
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["status"], "ready")
        self.assertEqual(doc["reasons"], [])
        self.assertTrue(doc["checks"]["access"]["ok"])
        self.assertEqual(doc["checks"]["access"]["callers"], 1)
        self.assertNotIn("audit", doc["checks"])
        self.assertNotIn("shared_limits", doc["checks"])
        # After an upstream answer the clock is judged from its Date.
        status, answer = g.call(MODIFY, gw.SEED_BODY)
        self.assertEqual(status, 200, answer)
        doc = json.loads(admin_get(g, "/readyz")[2])
        self.assertLessEqual(abs(doc["checks"]["clock"]["skew_seconds"]), 2, doc)
        self.assertEqual(admin_get(g, "/nothing")[0], 404)
        self.assertEqual(admin_get(g, "/metrics", "POST")[0], 405)
        # The caller listener does not serve /metrics.
        _, _, body = g.request("GET", "/metrics", {"Host": "gaap.tencentcloudapi.com"})
        self.assertNotIn(b"tcgw_calls_total", body)

    def test_not_ready_when_redis_is_away(self):
        g = self.start(extra_config={"limits": {"backend": "redis", "redis": {
            "port": harness.free_port(), "timeout_ms": 20}}})
        status, _, body = admin_get(g, "/readyz")
        doc = json.loads(body)
        self.assertEqual(status, 503, doc)
        self.assertEqual(doc["status"], "unready")
        self.assertFalse(doc["checks"]["shared_limits"]["ok"])
        self.assertTrue(any(r.startswith("shared_limits: ") for r in doc["reasons"]), doc)
        text = admin_get(g, "/metrics")[2].decode()
        s = samples(text)
        self.assertEqual(s[("tcgw_limits_shared_up", frozenset())], 0)
        self.assertEqual(s[("tcgw_ready", frozenset())], 0)

    def test_not_ready_when_tencent_clock_is_off(self):
        os.environ["TCGW_SIM_DATE_SKEW_S"] = "-600"
        try:
            sim = harness.Simulator().start(os.path.join(self.dir, "skewed"),
                                            {gw.DEV_SECRET_ID: gw.DEV_SECRET_KEY}, rate_limit=0)
        finally:
            del os.environ["TCGW_SIM_DATE_SKEW_S"]
        self.addCleanup(sim.stop)
        g = self.start(upstream_port=sim.port, ca=sim.ca_file)
        self.assertEqual(admin_get(g, "/readyz")[0], 200)  # no Date seen yet
        status, answer = g.call(MODIFY, gw.SEED_BODY)
        self.assertEqual(status, 200, answer)
        status, _, body = admin_get(g, "/readyz")
        doc = json.loads(body)
        self.assertEqual(status, 503, doc)
        clock = doc["checks"]["clock"]
        self.assertFalse(clock["ok"])
        self.assertLessEqual(abs(clock["skew_seconds"] + 600), 2, clock)
        self.assertIn("behind", clock["reason"])
        s = samples(admin_get(g, "/metrics")[2].decode())
        self.assertLessEqual(abs(s[("tcgw_clock_skew_seconds", frozenset())] + 600), 2)

    def test_metrics_count_every_call(self):
        g = self.start(policies={"reads-only": READS_ONLY},
                       callers={"local": {"credential": "default", "policies": ["reads-only"]}},
                       extra_config={"threads": 2})
        for _ in range(3):
            status, answer = g.call("DescribeProxies", {})
            self.assertEqual(status, 200, answer)
        for _ in range(2):
            status, answer = g.call(MODIFY, gw.SEED_BODY)
            self.assertEqual(gw.error_code(answer), "UnauthorizedOperation", answer)
        status, answer = g.call("NoSuchThing", {})
        self.assertEqual(gw.error_code(answer), "InvalidAction", answer)
        status, answer = g.call(MODIFY, gw.SEED_BODY, host="gaap.example.com")
        unknown_host_code = gw.error_code(answer)

        status, headers, body = admin_get(g, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers)
        text = body.decode()
        s = samples(text)
        describe = dict(service="gaap", action="DescribeProxies", caller="local",
                        decision="allow")
        self.assertEqual(calls(s, **describe), 3, text)
        self.assertEqual(calls(s, code="OK", **describe), 3, text)
        self.assertEqual(calls(s, service="gaap", action=MODIFY, caller="local", decision="deny",
                               code="UnauthorizedOperation"), 2, text)
        self.assertEqual(calls(s, service="other", action="other", code="InvalidAction"), 1, text)
        self.assertEqual(calls(s, code=unknown_host_code), 1, text)
        self.assertEqual(calls(s), 7, text)
        self.assertEqual(s[("tcgw_upstream_latency_seconds_count", frozenset())], 3, text)
        self.assertEqual(s[("tcgw_upstream_latency_seconds_bucket", frozenset({("le", "+Inf")}))],
                         3, text)
        self.assertEqual(s[("tcgw_limit_refusals_total", frozenset())], 0)
        self.assertEqual(s[("tcgw_upstream_retries_total", frozenset())], 0)
        self.assertEqual(s[("tcgw_calls_in_flight", frozenset())], 0)
        self.assertEqual(s[("tcgw_build_info", frozenset({("version", "0.1.0")}))], 1)
        self.assertNotIn(gw.DEV_SECRET_ID, text)
        self.assertNotIn(gw.DEV_SECRET_KEY, text)
        self.promtool(text)

    def test_limit_refusals_and_audit_counters(self):
        # Audit needs a signing key made by `tcgw audit keygen`: set it up as an operator would.
        d = os.path.join(self.dir, "audited")
        os.makedirs(d)
        gw.run_tcgw(["audit", "keygen", "--secret-key", os.path.join(d, "audit.key"),
                     "--public-key", os.path.join(d, "audit.pub")])
        g = self.start(extra_config={
            "limits": {"actions": {"gaap.ModifyProxyConfiguration": {"rate": 0.1, "burst": 1}}},
            "audit": {"file": os.path.join(d, "audit.log"),
                      "signing_key_file": os.path.join(d, "audit.key")}})
        codes = [gw.error_code(g.call(MODIFY, gw.SEED_BODY)[1]) for _ in range(3)]
        self.assertEqual(codes, [None, "RequestLimitExceeded", "RequestLimitExceeded"])
        text = admin_get(g, "/metrics")[2].decode()
        s = samples(text)
        self.assertEqual(s[("tcgw_limit_refusals_total", frozenset())], 2, text)
        self.assertEqual(calls(s, code="RequestLimitExceeded", decision="allow"), 2, text)
        self.assertEqual(s[("tcgw_audit_records_total", frozenset())], 3, text)
        self.assertGreaterEqual(s[("tcgw_audit_fsyncs_total", frozenset())], 1, text)
        self.assertEqual(s[("tcgw_audit_queue_records", frozenset())], 0, text)  # all on disk
        doc = json.loads(admin_get(g, "/readyz")[2])
        self.assertTrue(doc["checks"]["audit"]["ok"], doc)
        self.promtool(text)

    def test_json_logs(self):
        g = self.start(extra_config={"log_format": "json"})
        status, answer = g.call(MODIFY, gw.SEED_BODY)
        self.assertEqual(status, 200, answer)
        rid = answer["Response"]["RequestId"]
        g.stop()
        lines = [json.loads(line) for line in g.read_log().splitlines()]  # every line is JSON
        events = [line["event"] for line in lines]
        self.assertIn("listening", events)
        self.assertIn("admin_listening", events)
        self.assertIn("stopping", events)
        listening = next(line for line in lines if line["event"] == "listening")
        self.assertEqual(listening["admin_port"], g.admin_port)
        call = [line for line in lines if line["event"] == "call"]
        self.assertEqual(len(call), 1, lines)
        self.assertEqual(call[0]["level"], "info")
        self.assertEqual(call[0]["status"], 200)
        self.assertEqual(call[0]["action"], MODIFY)
        self.assertIsInstance(call[0]["ms"], float)
        self.assertRegex(call[0]["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertNotEqual(call[0]["request_id"], rid)  # the gateway's own id, not Tencent's
        text = g.read_log()
        self.assertNotIn(gw.DEV_SECRET_KEY, text)
        self.assertNotIn(gw.DEV_SECRET_ID, text)

    def test_bad_log_format_is_refused(self):
        with self.assertRaises(AssertionError) as caught:
            self.start(extra_config={"log_format": "xml"})
        self.assertIn('"log_format" must be "text"', str(caught.exception))

    def promtool(self, text):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool is not installed (Debian package prometheus)")
        proc = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                              capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stdout.decode() + proc.stderr.decode())


if __name__ == "__main__":
    unittest.main()
