"""End to end: a service's unsigned call through the real gateway to the TLS simulator.

Every test drives real processes on loopback: tcgw-sim (TLS, verifies signatures, records what it
received) and tcgw (configured with the dev CA and libcurl's CONNECT_TO, so Host, SNI and the
certificate check use the real name gaap.tencentcloudapi.com).
"""
import json
import os
import re
import socket
import tempfile
import threading
import time
import unittest

import gw
import harness
import scripted

SEED = gw.SEED_BODY


class GatewayCase(unittest.TestCase):
    """A simulator and a gateway per test class; records are cleared before each test."""

    gateway_config = None
    sim_rate_limit = 0

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="tcgw-e2e-")
        cls.sim = harness.Simulator().start(os.path.join(cls.tmp.name, "sim"),
                                            {gw.DEV_SECRET_ID: gw.DEV_SECRET_KEY},
                                            rate_limit=cls.sim_rate_limit)
        cls.gw = gw.Gateway(os.path.join(cls.tmp.name), cls.sim.port, cls.sim.ca_file,
                            extra_config=cls.gateway_config)
        try:
            cls.gw.start()
        except Exception:
            cls.sim.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.gw.stop()
        finally:
            cls.sim.stop()
            cls.tmp.cleanup()

    def setUp(self):
        self.sim.clear_records()

    def assertRefused(self, answer, code, words=""):
        self.assertEqual(gw.error_code(answer), code, answer)
        message = answer["Response"]["Error"]["Message"]
        self.assertIn(words, message)
        self.assertRegex(answer["Response"]["RequestId"], r"^[0-9a-f-]{36}$")

    def assertNothingForwarded(self):
        self.assertEqual(self.sim.records(), [], "a refused call must not reach Tencent")


class TestSignedForwarding(GatewayCase):

    def test_seed_example_is_signed_forwarded_and_answered(self):
        before = int(time.time())
        status, answer = self.gw.call("ModifyProxyConfiguration", SEED)
        self.assertEqual(status, 200)
        self.assertEqual(list(answer["Response"].keys()), ["RequestId"], answer)
        (rec,) = self.sim.records()
        self.assertIsNone(rec["error_code"], "the simulator refused the signature")
        self.assertEqual(rec["request_id"], answer["Response"]["RequestId"])
        self.assertEqual(self.sim.record_body_bytes(rec), SEED, "bytes sent must be bytes signed")
        h = rec["headers"]
        self.assertEqual(h["host"], "gaap.tencentcloudapi.com")
        self.assertEqual(h["content-type"], "application/json")
        self.assertEqual(h["x-tc-action"], "ModifyProxyConfiguration")
        self.assertEqual(h["x-tc-version"], "2018-05-29")
        self.assertLessEqual(abs(int(h["x-tc-timestamp"]) - before), 5)
        # A third, independent signer (Python) agrees with what the gateway sent.
        expect = harness.tc3_sign(gw.DEV_SECRET_ID, gw.DEV_SECRET_KEY, "gaap.tencentcloudapi.com",
                                  "gaap", int(h["x-tc-timestamp"]), "application/json", SEED)
        self.assertEqual(h["authorization"], expect)

    def test_simulator_answer_comes_back(self):
        status, headers, body = self.gw.request("POST", "/", {
            "Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
            "X-TC-Action": "DescribeProxies", "X-TC-Version": "2018-05-29"}, b'{"Limit": 2}')
        self.assertEqual(status, 200)
        answer = json.loads(body)
        self.assertEqual(answer["Response"]["TotalCount"], 4)  # the fixture's proxies
        self.assertEqual(len(answer["Response"]["ProxySet"]), 2)  # Limit 2
        (rec,) = self.sim.records()
        self.assertEqual(rec["request_id"], answer["Response"]["RequestId"])
        # The gateway's own id for the call travels in a header, distinct from Tencent's.
        self.assertRegex(headers["X-Tcgw-Request-Id"], r"^[0-9a-f-]{36}$")
        self.assertNotEqual(headers["X-Tcgw-Request-Id"], rec["request_id"])

    def test_upstream_errors_pass_through(self):
        status, answer = self.gw.call("ModifyProxyConfiguration",
                                      {"ProxyId": "link-doesnotexist", "Bandwidth": 10})
        self.assertEqual(status, 200)
        self.assertEqual(gw.error_code(answer), "ResourceNotFound")
        (rec,) = self.sim.records()
        self.assertEqual(rec["error_code"], "ResourceNotFound")
        self.assertEqual(rec["request_id"], answer["Response"]["RequestId"],
                         "the answer must be the simulator's, not one the gateway made")

    def test_caller_credentials_headers_are_not_passed_on(self):
        status, answer = self.gw.call("ModifyProxyConfiguration", SEED, extra_headers={
            "X-TC-Timestamp": "1", "X-TC-Token": "caller-token", "X-TC-Region": "ap-guangzhou",
            "X-TC-Language": "en-US"})
        self.assertIsNone(gw.error_code(answer), answer)
        (rec,) = self.sim.records()
        h = rec["headers"]
        self.assertIn("Credential=%s/" % gw.DEV_SECRET_ID, h["authorization"])
        self.assertNotEqual(h["x-tc-timestamp"], "1")
        self.assertNotIn("x-tc-token", h)
        self.assertEqual(h["x-tc-region"], "ap-guangzhou")
        self.assertEqual(h["x-tc-language"], "en-US")

    def test_regional_and_intl_hosts_are_kept(self):
        for host in ("gaap.ap-guangzhou.tencentcloudapi.com", "gaap.intl.tencentcloudapi.com"):
            self.sim.clear_records()
            status, answer = self.gw.call("DescribeProxies", {"Limit": 1}, host=host + ":8080")
            self.assertIsNone(gw.error_code(answer), answer)
            (rec,) = self.sim.records()
            self.assertEqual(rec["headers"]["host"], host)
            self.assertIsNone(rec["error_code"])

    def test_service_from_path_or_absolute_target(self):
        # /gaap/ for clients that can only set a path; the absolute form as a proxy client sends it.
        for target in ("/gaap/", "http://gaap.tencentcloudapi.com/"):
            self.sim.clear_records()
            status, answer = self.gw.call("DescribeProxies", {"Limit": 1}, host="127.0.0.1",
                                          target=target)
            self.assertIsNone(gw.error_code(answer), answer)
            (rec,) = self.sim.records()
            self.assertEqual(rec["headers"]["host"], "gaap.tencentcloudapi.com")

    def test_three_actions_official_examples_reach_the_simulator(self):
        shared = os.environ.get("TCGW_SHARED_DIR", "")
        path = os.path.join(shared, "reference", "tccli-gaap-v20180529", "examples.json")
        if not os.path.exists(path):
            self.skipTest("skipped: ../shared not present (Tencent's examples.json)")
        with open(path, encoding="utf-8") as f:
            examples = json.load(f)["actions"]
        sent = 0
        for action in ("ModifyProxyConfiguration", "DescribeProxies",
                       "DescribeAccessRegionsByDestRegion"):
            for ex in examples[action]:
                body = ex["input"].split("\n\n", 1)[1].encode()
                self.sim.clear_records()
                status, answer = self.gw.call(action, body)
                self.assertEqual(status, 200)
                code = gw.error_code(answer)
                # The gateway accepted it: it reached the simulator, which verified the signature.
                (rec,) = self.sim.records()
                self.assertEqual(self.sim.record_body_bytes(rec), body)
                self.assertFalse((code or "").startswith("AuthFailure"), answer)
                sent += 1
        self.assertGreaterEqual(sent, 3)


class TestRefusals(GatewayCase):
    """Every refusal is a Tencent-format error with a precise code, and nothing is forwarded."""

    gateway_config = {"max_body_bytes": 4096}

    def test_spec_validation_refusals(self):
        cases = [
            ("ModifyProxyConfiguration", {"ProxyId": "link-4ftf12sb", "Bandwidth": 10, "Bogus": 1},
             "UnknownParameter", "Bogus"),
            ("ModifyProxyConfiguration", {"ProxyId": "link-4ftf12sb"}, "MissingParameter",
             "Bandwidth"),
            ("ModifyProxyConfiguration", {"Bandwidth": 10}, "MissingParameter", "ProxyId"),
            ("ModifyProxyConfiguration", {"ProxyId": "link-4ftf12sb", "Bandwidth": "ten"},
             "InvalidParameter", "Bandwidth"),
            ("ModifyProxyConfiguration", {"ProxyId": "link-4ftf12sb", "Bandwidth": 10,
                                          "BillingType": 2}, "InvalidParameterValue",
             "BillingType"),
            ("ModifyProxyConfiguration", {"ProxyId": "link-4ftf12sb", "Bandwidth": 10,
                                          "ClientToken": "x" * 65}, "InvalidParameterValue",
             "ClientToken"),
            ("DescribeAccessRegionsByDestRegion", {}, "MissingParameter", "DestRegion"),
            ("DescribeProxies", {"Filters": [{"Values": ["a"]}]}, "MissingParameter",
             "Filters.0.Name"),
            ("DescribeProxies", {"Limit": 101}, "InvalidParameterValue", "Limit"),
            ("DescribeProxies", {"Limit": -1}, "InvalidParameterValue", "Limit"),
            ("CreateProxy", {}, "InvalidAction", "CreateProxy"),
        ]
        for action, body, code, words in cases:
            with self.subTest(action=action, body=body):
                status, answer = self.gw.call(action, body)
                self.assertEqual(status, 200)
                self.assertRefused(answer, code, words)
        self.assertNothingForwarded()

    def test_unknown_version_and_service(self):
        status, answer = self.gw.call("DescribeProxies", {}, version="2099-01-01")
        self.assertRefused(answer, "NoSuchVersion", "2099-01-01")
        status, answer = self.gw.call("DescribeInstances", {}, host="cvm.tencentcloudapi.com")
        self.assertRefused(answer, "NoSuchProduct", "cvm")
        self.assertNothingForwarded()

    def test_request_shape_refusals(self):
        base = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
                "X-TC-Action": "DescribeProxies", "X-TC-Version": "2018-05-29"}
        cases = [
            ("GET", base, b"", "UnsupportedProtocol"),
            ("PUT", base, b"{}", "UnsupportedProtocol"),
            ("POST", dict(base, **{"Content-Type": "text/plain"}), b"{}", "InvalidRequest"),
            ("POST", base, b"{\"Limit\": ", "InvalidRequest"),
            ("POST", base, b"[1, 2]", "InvalidRequest"),
            ("POST", base, b"{\"Limit\": 1, \"Limit\": 2}", "InvalidRequest"),
            ("POST", {k: v for k, v in base.items() if k != "X-TC-Action"}, b"{}",
             "MissingParameter"),
            ("POST", {k: v for k, v in base.items() if k != "X-TC-Version"}, b"{}",
             "MissingParameter"),
            ("POST", dict(base, Host="127.0.0.1"), b"{}", "InvalidRequest"),
            ("POST", base, b"{\"Limit\": 1}" + b" " * 5000, "RequestSizeLimitExceeded"),
        ]
        for method, headers, body, code in cases:
            with self.subTest(method=method, headers=headers, body=body[:40]):
                status, resp_headers, data = self.gw.request(method, "/", headers, body)
                self.assertEqual(status, 200)
                self.assertEqual(resp_headers.get("Content-Type"), "application/json")
                answer = json.loads(data)
                self.assertRefused(answer, code)
                self.assertEqual(resp_headers.get("X-Tcgw-Request-Id"),
                                 answer["Response"]["RequestId"])
        self.assertNothingForwarded()

    def test_head_capacity(self):
        """A head of 4 KiB is read (and its extra header not passed on); one of 16 KiB is
        refused (431) before any of it is judged, and nothing is forwarded."""
        base = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
                "X-TC-Action": "DescribeProxies", "X-TC-Version": "2018-05-29"}
        status, _, data = self.gw.request("POST", "/", dict(base, **{"X-Pad": "p" * 3500}),
                                          b"{}")
        self.assertEqual(status, 200, data)
        self.assertIsNone(gw.error_code(json.loads(data)), data)
        self.assertNotIn("x-pad", self.sim.records()[-1]["headers"])
        forwarded = len(self.sim.records())
        # libmicrohttpd answers 431 and closes, maybe before the whole head is written; the close
        # over unread bytes can reset the connection before the answer is read: either is a
        # refusal, and nothing may be forwarded.
        head = "".join("%s: %s\r\n" % kv for kv in dict(base, **{
            "X-Pad": "p" * 16384, "Content-Length": "2"}).items())
        with socket.create_connection(("127.0.0.1", self.gw.port), timeout=15) as sock:
            try:
                sock.sendall(("POST / HTTP/1.1\r\n%s\r\n{}" % head).encode())
            except (BrokenPipeError, ConnectionResetError):
                pass
            answer = b""
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                answer += chunk
        self.assertTrue(answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200])
        self.assertEqual(len(self.sim.records()), forwarded)

    def test_caller_that_half_closes_after_its_request_gets_the_answer(self):
        """A client may send its whole call, shut down its writing side, then read: the gateway
        still answers, and closes the connection afterwards (nothing more can come)."""
        call = (b"POST / HTTP/1.1\r\nHost: gaap.tencentcloudapi.com\r\n"
                b"Content-Type: application/json\r\nX-TC-Action: ModifyProxyConfiguration\r\n"
                b"X-TC-Version: 2018-05-29\r\nContent-Length: %d\r\n\r\n" % len(SEED)) + SEED
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
            s.sendall(call)
            s.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)
            self.assertIn(b'"RequestId"', data)
            self.assertNotIn(b'"Error"', data)

    def test_query_string_is_refused(self):
        status, _, data = self.gw.request("POST", "/?Action=DeleteProxies&ProxyIds.0=link-1", {
            "Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
            "X-TC-Action": "DescribeProxies", "X-TC-Version": "2018-05-29"}, b"{}")
        self.assertRefused(json.loads(data), "InvalidRequest", "Query strings")
        self.assertNothingForwarded()

    def test_connect_is_not_taken_for_a_tunnel(self):
        status, headers, data = self.gw.request(
            "CONNECT", "gaap.tencentcloudapi.com:443", {"Host": "gaap.tencentcloudapi.com:443"},
            None)
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("Allow"), "POST")
        self.assertRefused(json.loads(data), "UnsupportedProtocol", "only POST")
        self.assertNothingForwarded()

    def test_body_size_limit_boundary(self):
        headers = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
                   "X-TC-Action": "DescribeProxies", "X-TC-Version": "2018-05-29"}
        at_limit = b'{"Limit": 1' + b" " * (4096 - 12) + b"}"
        self.assertEqual(len(at_limit), 4096)
        status, _, data = self.gw.request("POST", "/", headers, at_limit)
        self.assertIsNone(gw.error_code(json.loads(data)), data)
        (rec,) = self.sim.records()
        self.assertEqual(self.sim.record_body_bytes(rec), at_limit)
        self.sim.clear_records()
        status, _, data = self.gw.request("POST", "/", headers, at_limit + b" ")
        self.assertRefused(json.loads(data), "RequestSizeLimitExceeded", "4096")
        self.assertNothingForwarded()

    def test_chunked_body_over_the_limit(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=10)
        headers = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
                   "X-TC-Action": "DescribeProxies", "X-TC-Version": "2018-05-29"}
        chunks = (b"{\"Limit\": 1" + b" " * 1000 for _ in range(10))
        conn.request("POST", "/", body=chunks, headers=headers, encode_chunked=True)
        resp = conn.getresponse()
        answer = json.loads(resp.read())
        conn.close()
        self.assertRefused(answer, "RequestSizeLimitExceeded", "4096")
        self.assertNothingForwarded()

    def test_health(self):
        status, _, body = self.gw.request("GET", "/healthz", {"Host": "127.0.0.1"}, None)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"status": "ok"})


class TestSimulatorRefusalsPassThrough(GatewayCase):
    sim_rate_limit = 2

    def test_rate_limit_answer_is_the_upstreams(self):
        codes = [gw.error_code(self.gw.call("DescribeProxies", {"Limit": 1})[1])
                 for _ in range(6)]
        self.assertIn("RequestLimitExceeded", codes)
        self.assertIn(None, codes)
        self.assertEqual(len(self.sim.records()), 6)


class TestWorkers(GatewayCase):
    """Four workers, each its own loop, server, upstream and pipeline, on one port: concurrent
    calls are each signed correctly and answered with their own upstream answer."""

    gateway_config = {"threads": 4}

    def test_concurrent_calls_across_workers(self):
        self.assertIn("workers=4", self.gw.read_log())
        results = []
        lock = threading.Lock()

        def caller(n):
            for i in range(25):
                status, answer = self.gw.call("DescribeProxies", {"Limit": 1 + (n * 25 + i) % 100})
                with lock:
                    results.append(answer)
        threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 200)
        for answer in results:
            self.assertIsNone(gw.error_code(answer), answer)
        records = self.sim.records()
        self.assertEqual(len(records), 200)
        self.assertEqual({r["request_id"] for r in records},
                         {a["Response"]["RequestId"] for a in results},
                         "each caller gets the answer to its own call")
        for rec in records:
            h = rec["headers"]
            self.assertIsNone(rec["error_code"])
            self.assertEqual(h["authorization"], harness.tc3_sign(
                gw.DEV_SECRET_ID, gw.DEV_SECRET_KEY, h["host"], "gaap", int(h["x-tc-timestamp"]),
                "application/json", self.sim.record_body_bytes(rec)))


class TestTencentDescription(unittest.TestCase):
    """The gateway pointed at the Tencent Cloud CLI's own api.json for GAAP (102 actions)."""

    def test_any_described_action_is_checked_and_forwarded(self):
        shared = os.environ.get("TCGW_SHARED_DIR", "")
        spec_dir = os.path.join(shared, "reference", "tccli-gaap-v20180529")
        if not os.path.exists(os.path.join(spec_dir, "api.json")):
            self.skipTest("skipped: ../shared not present (Tencent's api.json)")
        tmp = tempfile.TemporaryDirectory(prefix="tcgw-e2e-")
        self.addCleanup(tmp.cleanup)
        sim = harness.Simulator().start(os.path.join(tmp.name, "sim"),
                                        {gw.DEV_SECRET_ID: gw.DEV_SECRET_KEY}, rate_limit=0)
        self.addCleanup(sim.stop)
        g = gw.Gateway(tmp.name, sim.port, sim.ca_file, spec_dir=spec_dir).start()
        self.addCleanup(g.stop)
        self.assertIn("actions=102", g.read_log())
        # An action tcgw ships no description of: checked against Tencent's, then forwarded.
        status, answer = g.call("DescribeRealServers", {"ProjectId": "0", "Limit": 1})
        (rec,) = sim.records()
        self.assertEqual(rec["action"], "DescribeRealServers")
        h = rec["headers"]
        self.assertEqual(h["authorization"], harness.tc3_sign(
            gw.DEV_SECRET_ID, gw.DEV_SECRET_KEY, h["host"], "gaap", int(h["x-tc-timestamp"]),
            "application/json", sim.record_body_bytes(rec)))
        # (The simulator implements a few actions only, so its answer here is InvalidAction.)
        self.assertEqual(gw.error_code(answer), "InvalidAction")
        sim.clear_records()
        status, answer = g.call("DescribeRealServers", {"ProjectId": "zero"})
        self.assertEqual(gw.error_code(answer), "InvalidParameter")
        status, answer = g.call("CreateProxy", {"ProjectId": 0})
        self.assertEqual(gw.error_code(answer), "MissingParameter")
        self.assertEqual(sim.records(), [])


class TestServeCommandLine(unittest.TestCase):

    def test_usage_errors_do_not_echo_values(self):
        for args in (["--bogus=SECRETVALUE"], ["SECRETVALUE"], ["--port", "SECRETVALUE"]):
            proc = gw.run_tcgw(["serve"] + args, check=False)
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertNotIn(b"SECRETVALUE", proc.stderr + proc.stdout)
            self.assertIn(b"usage: tcgw serve", proc.stderr)

    def test_bad_config_names_the_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tcgw.json")
            with open(path, "w") as f:
                f.write('{"listen_port": "eighty"}')
            proc = gw.run_tcgw(["serve", "--config", path], check=False)
            self.assertEqual(proc.returncode, 1)
            self.assertIn(path.encode(), proc.stderr)
            self.assertIn(b"listen_port", proc.stderr)


class TestResolveOverride(unittest.TestCase):
    """libcurl's RESOLVE override with the simulator on the real port 443, as in production."""

    def test_seed_call_through_resolve(self):
        tmp = tempfile.TemporaryDirectory(prefix="tcgw-e2e-")
        self.addCleanup(tmp.cleanup)
        sim = harness.Simulator()
        try:
            sim.start(os.path.join(tmp.name, "sim"), {gw.DEV_SECRET_ID: gw.DEV_SECRET_KEY},
                      extra_args=("--port", "443"))
        except RuntimeError as e:
            self.skipTest("port 443 cannot be bound here (needs root and a free port): %s" % e)
        self.addCleanup(sim.stop)
        g = gw.Gateway(tmp.name, sim.port, sim.ca_file, connect_to=[],
                       extra_config={"upstream": {"resolve": [
                           "gaap.tencentcloudapi.com:443:127.0.0.1"]}})
        g.start()
        self.addCleanup(g.stop)
        status, answer = g.call("ModifyProxyConfiguration", SEED)
        self.assertEqual(list(answer["Response"].keys()), ["RequestId"], answer)
        (rec,) = sim.records()
        self.assertEqual(rec["headers"]["host"], "gaap.tencentcloudapi.com")
        self.assertIsNone(rec["error_code"])


def hanging_server():
    """A TCP listener that accepts and never answers: an upstream that times out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()

    def close():
        stop.set()
        t.join()
        for c in held:
            c.close()
        sock.close()
    return sock.getsockname()[1], close


class TestUpstreamFailures(gw.GatewaysCase):
    """The gateway's own failures say so, with a precise code; what it forwards is what it got."""

    def test_unreachable(self):
        g = self.gateway(upstream_port=harness.free_port())
        status, answer = g.call("ModifyProxyConfiguration", SEED)
        self.assertEqual(gw.error_code(answer), "InternalError.UpstreamUnreachable")
        self.assertIn("not sent", answer["Response"]["Error"]["Message"])
        self.assertNotIn("127.0.0.1", answer["Response"]["Error"]["Message"],
                         "internal routing stays in the gateway's log")
        self.assertIn("detail=", g.read_log())

    def test_tls_handshake_that_never_ends_sends_nothing(self):
        port, close = hanging_server()
        self.addCleanup(close)
        g = self.gateway(upstream_port=port,
                         extra_config={"upstream": {"connect_timeout_ms": 300,
                                                    "timeout_ms": 20000}})
        started = time.monotonic()
        status, answer = g.call("ModifyProxyConfiguration", SEED)
        self.assertLess(time.monotonic() - started, 10, "the connect timeout must apply")
        self.assertEqual(gw.error_code(answer), "InternalError.UpstreamUnreachable")
        self.assertIn("not sent", answer["Response"]["Error"]["Message"])

    def test_untrusted_certificate(self):
        other = harness.make_certs(os.path.join(self.dir, "other-ca"))
        g = self.gateway(ca=other["ca"])
        status, answer = g.call("ModifyProxyConfiguration", SEED)
        self.assertEqual(gw.error_code(answer), "InternalError.UpstreamTLSFailure", answer)
        self.assertEqual(self.sim.records(), [])

    def test_certificate_for_another_host(self):
        certs = self.sim.certs
        cert, key = scripted.make_cert_for(self.dir, "other.example", certs["ca"], certs["ca_key"])
        up = self.scripted(lambda req: (200, "OK", {}, b"{}"), cert, key)
        g = self.gateway(upstream_port=up.port)
        status, answer = g.call("ModifyProxyConfiguration", SEED)
        self.assertEqual(gw.error_code(answer), "InternalError.UpstreamTLSFailure", answer)
        self.assertEqual(up.requests, [])

    def test_status_and_bytes_come_back_unchanged_over_one_connection(self):
        body = b'{"Response": {"Error": {"Code": "InternalError", "Message": "\u00e9"}, ' \
               b'"RequestId": "r-1"}}\n  '
        up = self.scripted(lambda req: (503, "Service Unavailable", {}, body))
        g = self.gateway(upstream_port=up.port, extra_config={"threads": 1})  # one worker
        for _ in range(5):
            status, headers, data = g.request("POST", "/", {
                "Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
                "X-TC-Action": "DescribeProxies", "X-TC-Version": "2018-05-29"}, b'{"Limit": 1}')
            self.assertEqual(status, 503)
            self.assertEqual(data, body)
        self.assertEqual(len(up.requests), 5)
        self.assertEqual(up.connections, 1, "the upstream connection must be reused")
        self.assertTrue(up.requests[0].endswith(b'\r\n\r\n{"Limit": 1}'))

    def test_redirect_is_not_followed(self):
        up = self.scripted(lambda req: (302, "Found", {
            "Location": "http://127.0.0.1:1/elsewhere"}, b"moved"))  # loopback, even if followed
        g = self.gateway(upstream_port=up.port)
        status, headers, data = g.request("POST", "/", {
            "Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
            "X-TC-Action": "DescribeProxies", "X-TC-Version": "2018-05-29"}, b"{}")
        self.assertEqual((status, data), (302, b"moved"))
        self.assertEqual(len(up.requests), 1)

    def test_proxy_from_the_environment_is_ignored(self):
        closed = "http://127.0.0.1:%d" % harness.free_port()
        g = self.gateway(env={"https_proxy": closed, "HTTPS_PROXY": closed, "ALL_PROXY": closed})
        status, answer = g.call("ModifyProxyConfiguration", SEED)
        self.assertIsNone(gw.error_code(answer), answer)
        self.assertEqual(len(self.sim.records()), 1)

    def test_timeout_without_holding_the_server(self):
        up = self.scripted(lambda req: None)  # reads the call, never answers
        g = self.gateway(upstream_port=up.port,
                         extra_config={"threads": 1, "upstream": {"timeout_ms": 4000}})
        result = {}

        def slow():
            result["answer"] = g.call("ModifyProxyConfiguration", SEED)[1]
        t = threading.Thread(target=slow)
        t.start()
        deadline = time.monotonic() + 5
        while not up.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(len(up.requests), 1, "the slow call should be waiting upstream")
        # With one server thread, a call answered while the first one waits upstream proves that
        # waiting does not hold the thread: held, it would wait the 4 s upstream timeout.
        started = time.monotonic()
        status, answer = g.call("DescribeProxies", {"Bogus": 1})
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertEqual(gw.error_code(answer), "UnknownParameter")
        t.join(15)
        self.assertEqual(gw.error_code(result["answer"]), "InternalError.UpstreamTimeout")
        self.assertIn("4000 ms", result["answer"]["Response"]["Error"]["Message"])
        self.assertIn("may have reached", result["answer"]["Response"]["Error"]["Message"])

    def test_answer_over_the_size_limit(self):
        g = self.gateway(extra_config={"upstream": {"max_response_bytes": 1024}})
        status, answer = g.call("DescribeProxies", {"Limit": 100})
        self.assertEqual(gw.error_code(answer), "ResponseSizeLimitExceeded")
        self.assertIn("1024 bytes", answer["Response"]["Error"]["Message"])

    def test_shutdown_lets_a_call_in_flight_finish(self):
        up = self.scripted(lambda req: None)
        g = self.gateway(upstream_port=up.port, extra_config={"upstream": {"timeout_ms": 1500}})
        result = {}

        def slow():
            result["answer"] = g.call("ModifyProxyConfiguration", SEED)[1]
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)
        g.proc.send_signal(15)
        t.join(10)
        # The call got its real outcome (the upstream timed out), not a dropped connection.
        self.assertEqual(gw.error_code(result["answer"]), "InternalError.UpstreamTimeout")
        self.assertEqual(g.stop(), 0)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", g.port), timeout=1).close()

    def test_shutdown_with_kept_alive_pipelined_calls(self):
        """While stopping, a call in flight gets its real outcome with Connection: close, and the
        calls pipelined behind it are not read; a new call on an idle kept-alive connection is
        refused as not sent, with Connection: close. Nothing is forwarded after the signal."""
        up = self.scripted(lambda req: None)
        g = self.gateway(upstream_port=up.port, extra_config={"upstream": {"timeout_ms": 1000}})
        one = (b"POST / HTTP/1.1\r\nHost: gaap.tencentcloudapi.com\r\n"
               b"Content-Type: application/json\r\nX-TC-Action: ModifyProxyConfiguration\r\n"
               b"X-TC-Version: 2018-05-29\r\nContent-Length: %d\r\n\r\n" % len(SEED)) + SEED
        socks = []
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", g.port), timeout=15)
            s.sendall(one * 3)
            socks.append(s)
        deadline = time.monotonic() + 5
        while len(up.requests) < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(len(up.requests), 8, "one call per connection is upstream")
        idle = socket.create_connection(("127.0.0.1", g.port), timeout=15)
        idle.sendall(one.replace(b"ModifyProxyConfiguration", b"NoSuchAction"))
        first = idle.recv(65536)
        self.assertIn(b"InvalidAction", first)
        self.assertNotIn(b"connection: close", first.lower())
        g.proc.send_signal(15)
        time.sleep(0.2)
        idle.sendall(one)
        late = b""
        while True:
            chunk = idle.recv(65536)
            if not chunk:
                break
            late += chunk
        idle.close()
        self.assertIn(b'"Code":"ServiceUnavailable"', late)
        self.assertIn(b"not sent", late)
        self.assertIn(b"connection: close", late.lower())
        for s in socks:
            data = b""
            while True:  # the gateway closes the connection after its last answer
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            codes = [c.decode() for c in re.findall(rb'"Code":"([A-Za-z.]+)"', data)]
            self.assertEqual(codes, ["InternalError.UpstreamTimeout"], data)
            self.assertIn(b"connection: close", data.lower())
        self.assertEqual(g.stop(), 0)
        self.assertEqual(len(up.requests), 8, "nothing is forwarded after the stop signal")

    def test_missing_credential_refuses_to_start(self):
        os.makedirs(os.path.join(self.dir, "nocred"))
        g = gw.Gateway(os.path.join(self.dir, "nocred"), self.sim.port, self.sim.ca_file,
                       callers={"local": {"credential": "prod", "policies": ["allow-all"]}})
        with self.assertRaises(AssertionError) as ctx:
            g.start()
        self.assertIn('signs with credential "prod"', str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
