"""End to end: every call, refused at any step or forwarded with any outcome, passes the
pipeline's final stage exactly once (one log line per RequestId, with the code the caller got),
and only the documented headers are passed on to Tencent Cloud."""
import json
import os
import re
import tempfile
import threading
import time
import unittest

import gw
import harness

SEED = gw.SEED_BODY
BASE = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
        "X-TC-Action": "ModifyProxyConfiguration", "X-TC-Version": "2018-05-29"}


def log_lines_for(gateway, request_id):
    return [line for line in gateway.read_log().splitlines()
            if "event=call " in line and ("request_id=%s " % request_id) in line]


def field(line, name):
    m = re.search(r"\b%s=(\S+)" % name, line)
    return m.group(1) if m else None


class FinalStage(gw.GatewaysCase):

    def assertOneRecord(self, g, method, headers, body, code, upstream):
        status, resp_headers, data = g.request(method, "/", headers, body)
        rid = resp_headers.get("X-Tcgw-Request-Id")
        self.assertRegex(rid or "", r"^[0-9a-f-]{36}$")
        lines = log_lines_for(g, rid)
        self.assertEqual(len(lines), 1, "the final stage must run exactly once: %r" % lines)
        self.assertEqual(field(lines[0], "error"), code or "-", lines[0])
        self.assertEqual(field(lines[0], "upstream"), upstream, lines[0])
        self.assertEqual(field(lines[0], "status"), str(status), lines[0])
        self.assertEqual(field(lines[0], "bytes_out"), str(len(data)), lines[0])
        self.assertEqual(field(lines[0], "peer"), "127.0.0.1", lines[0])
        if code is not None:
            self.assertEqual(gw.error_code(json.loads(data)), code)
        return data

    def test_every_refusal_kind(self):
        g = self.gateway(extra_config={"max_body_bytes": 4096})
        without = lambda name: {k: v for k, v in BASE.items() if k != name}  # noqa: E731
        cases = [
            ("GET", BASE, b"", "UnsupportedProtocol"),
            ("CONNECT", BASE, b"", "UnsupportedProtocol"),
            ("POST", dict(BASE, **{"Content-Type": "text/plain"}), SEED, "InvalidRequest"),
            ("POST", dict(BASE, Host="127.0.0.1"), SEED, "InvalidRequest"),
            ("POST", without("X-TC-Action"), SEED, "MissingParameter"),
            ("POST", dict(BASE, **{"X-TC-Action": "Bad-Action"}), SEED, "InvalidAction"),
            ("POST", dict(BASE, **{"X-TC-Version": "2018"}), SEED, "NoSuchVersion"),
            ("POST", dict(BASE, **{"X-TC-Region": "Bad Region"}), SEED, "InvalidParameterValue"),
            ("POST", dict(BASE, **{"X-TC-TraceId": "x" * 300}), SEED, "InvalidParameterValue"),
            ("POST", BASE, b"{" + b" " * 5000 + b"}", "RequestSizeLimitExceeded"),
            ("POST", BASE, b'{"ProxyId": ', "InvalidRequest"),
            ("POST", BASE, b"-9223372036854775809", "InvalidRequest"),
            ("POST", BASE, b'{"Bandwidth": 99999999999999999999}', "InvalidParameterValue"),
            ("POST", BASE, b'{"ProxyId": "link-1"}', "MissingParameter"),
            ("POST", BASE, b'{"ProxyId": "link-1", "Bandwidth": 1, "X": 1}', "UnknownParameter"),
            ("POST", dict(BASE, Host="cvm.tencentcloudapi.com"), SEED, "NoSuchProduct"),
        ]
        for method, headers, body, code in cases:
            with self.subTest(method=method, code=code, body=body[:30]):
                self.assertOneRecord(g, method, headers, body, code, "none")
        self.assertEqual(self.sim.records(), [])

    def test_every_upstream_outcome(self):
        # answered: the simulator's own answer, success and business error alike
        g = self.gateway()
        self.assertOneRecord(g, "POST", BASE, SEED, None, "answered")
        self.assertOneRecord(g, "POST", BASE, b'{"ProxyId": "link-nothere", "Bandwidth": 1}',
                             None, "answered")
        # connect: nothing listens
        g = self.gateway(upstream_port=harness.free_port())
        self.assertOneRecord(g, "POST", BASE, SEED, "InternalError.UpstreamUnreachable", "connect")
        # tls: a certificate from another CA
        other = harness.make_certs(os.path.join(self.dir, "other-ca"))
        g = self.gateway(ca=other["ca"])
        self.assertOneRecord(g, "POST", BASE, SEED, "InternalError.UpstreamTLSFailure", "tls")
        # timeout: the request is read, never answered
        up = self.scripted(lambda req: None)
        g = self.gateway(upstream_port=up.port, extra_config={"upstream": {"timeout_ms": 800}})
        self.assertOneRecord(g, "POST", BASE, SEED, "InternalError.UpstreamTimeout", "timeout")
        # too_large
        g = self.gateway(extra_config={"upstream": {"max_response_bytes": 1024}})
        self.assertOneRecord(g, "POST", dict(BASE, **{"X-TC-Action": "DescribeProxies"}),
                             b'{"Limit": 100}', "ResponseSizeLimitExceeded", "too_large")
        # failed: the request is read, then the connection closes without an answer
        up = self.scripted(lambda req: "close")
        g = self.gateway(upstream_port=up.port)
        self.assertOneRecord(g, "POST", BASE, SEED, "InternalError.UpstreamFailure", "failed")

    def test_stopping_outcomes_are_recorded_once(self):
        up = self.scripted(lambda req: None)
        g = self.gateway(upstream_port=up.port, extra_config={"upstream": {"timeout_ms": 20000}})
        results = []

        def call():
            results.append(g.request("POST", "/", BASE, SEED, timeout=30))
        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(up.requests) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        g.proc.send_signal(15)
        for t in threads:
            t.join(40)
        g.stop()
        self.assertEqual(len(results), 4)
        for status, headers, data in results:
            rid = headers.get("X-Tcgw-Request-Id")
            lines = log_lines_for(g, rid)
            self.assertEqual(len(lines), 1, lines)
            code = gw.error_code(json.loads(data))
            self.assertEqual(field(lines[0], "error"), code)
            self.assertIn(field(lines[0], "upstream"), ("aborted", "timeout"))


class PassedOnHeaders(unittest.TestCase):
    """Exactly the headers that are part of the call, and the documented tracing headers."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="tcgw-e2e-")
        cls.sim = harness.Simulator().start(os.path.join(cls.tmp.name, "sim"),
                                            {gw.DEV_SECRET_ID: gw.DEV_SECRET_KEY}, rate_limit=0)
        cls.gw = gw.Gateway(cls.tmp.name, cls.sim.port, cls.sim.ca_file)
        try:
            cls.gw.start()
            out = gw.run_tcgw(["callers", "add", "tracer", "--policy", "allow-all", "--config",
                               cls.gw.config_path]).stdout.decode()
            cls.token = gw.token_of(out)
            cls.gw.reload()
        except Exception:
            cls.gw.stop()
            cls.sim.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.gw.stop()
        finally:
            cls.sim.stop()
            cls.tmp.cleanup()

    def test_tracing_headers_pass_and_foreign_ones_do_not(self):
        self.sim.clear_records()
        headers = dict(BASE, **{
            "X-TC-TraceId": "5fe0c1e2-trace", "X-TC-RequestClient": "SDK_NODEJS_4.1.0",
            "X-TC-Region": "ap-guangzhou", "X-Forwarded-For": "10.0.0.1", "Cookie": "a=b",
            "X-TC-Token": "caller-token", "X-TC-Custom": "x", "User-Agent": "caller/1.0",
            "Authorization": "Bearer " + self.token, "X-TC-Timestamp": "1"})
        status, _, data = self.gw.request("POST", "/", headers, SEED)
        self.assertIsNone(gw.error_code(json.loads(data)), data)
        (rec,) = self.sim.records()
        h = rec["headers"]
        self.assertNotIn(self.token, json.dumps(rec))  # the caller's identity stays behind
        self.assertEqual(h.get("x-tc-traceid"), "5fe0c1e2-trace")
        self.assertEqual(h.get("x-tc-requestclient"), "SDK_NODEJS_4.1.0")
        self.assertEqual(set(h), {"host", "content-type", "content-length", "authorization",
                                  "x-tc-action", "x-tc-version", "x-tc-timestamp", "x-tc-region",
                                  "x-tc-traceid", "x-tc-requestclient"})

    def test_without_tracing_headers_none_are_made_up(self):
        self.sim.clear_records()
        status, _, data = self.gw.request("POST", "/", BASE, SEED)
        self.assertIsNone(gw.error_code(json.loads(data)), data)
        (rec,) = self.sim.records()
        self.assertNotIn("x-tc-traceid", rec["headers"])
        self.assertNotIn("x-tc-requestclient", rec["headers"])


if __name__ == "__main__":
    unittest.main()
