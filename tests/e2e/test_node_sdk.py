"""End to end against the official Tencent Cloud Node SDK (tencentcloud-sdk-nodejs-common).

1. Reference signer: calls go through the real gateway to the TLS simulator, and every request the
   simulator recorded is re-signed by the SDK's own Sign.sign3 (tests/node/reference_sign.js); the
   SDK's Authorization must equal the one tcgw sent, byte for byte.
2. Client: the SDK's CommonClient calls the gateway (tests/node/sdk_client.js) signing with an
   SDK key the gateway issued, and reads tcgw's answers and refusals as it reads Tencent's.

The SDK is installed into tests/node/node_modules by `cd tests/node && npm install` (bash dev.sh test
does it). Without it these tests fail, on purpose: they are not optional.

Run: cd tests/e2e && TCGW_BIN=... TCGW_SIM_BIN=... python3 -m unittest -v test_node_sdk
"""
import base64
import json
import re
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import gw
import harness

NODE_DIR = os.path.join(gw.repo_root(), "tests", "node")
SDK_PACKAGE = os.path.join(NODE_DIR, "node_modules", "tencentcloud-sdk-nodejs-common")
REFERENCE_SIGN_JS = os.path.join(NODE_DIR, "reference_sign.js")
SDK_CLIENT_JS = os.path.join(NODE_DIR, "sdk_client.js")


SEED_PARAMS = {"ProxyId": "link-4ftf12sb", "Concurrent": "2", "Bandwidth": "10"}
# Tencent's example body as its documentation prints it (newlines and indentation included).
SEED_BODY_PRETTY = (b'{\n    "ProxyId": "link-4ftf12sb",\n    "Concurrent": "2",\n'
                    b'    "Bandwidth": "10"\n}')
VERSION = "2018-05-29"
UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
NODE_TIMEOUT = 60


def load_fixture():
    with open(harness.default_fixture(), encoding="utf-8") as f:
        return json.load(f)


FIXTURE = load_fixture()
FIXTURE_PROXY_IDS = {p["ProxyId"] for p in FIXTURE["Proxies"]}
DEST_REGION = sorted(FIXTURE["AccessRegionsByDestRegion"])[0]


def setUpModule():
    """Fails (does not skip) when node or the SDK is missing: CI installs both."""
    if shutil.which("node") is None:
        raise AssertionError("node is not installed (Node.js 18 or later is needed for the official "
                             "Tencent Cloud Node SDK tests); bash dev.sh test installs it")
    if not os.path.isfile(os.path.join(SDK_PACKAGE, "package.json")):
        raise AssertionError(
            "the official Tencent Cloud Node SDK is not installed: %s is missing. "
            "Run `cd tests/node && npm install` (bash dev.sh test does it)." % SDK_PACKAGE)


def node_env():
    """The environment for node: no proxy variables (the SDK would tunnel through them)."""
    env = dict(os.environ)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY", "no_proxy", "NO_PROXY"):
        env.pop(name, None)
    return env


def run_node(script, payload):
    """Runs one node script with JSON on stdin; returns its JSON stdout."""
    proc = subprocess.run(["node", script], input=json.dumps(payload).encode("utf-8"),
                          capture_output=True, timeout=NODE_TIMEOUT, env=node_env(),
                          cwd=NODE_DIR, check=False)
    if proc.returncode != 0:
        raise AssertionError("node %s failed (%d):\n%s" % (os.path.basename(script),
                                                           proc.returncode,
                                                           proc.stderr.decode(errors="replace")))
    return json.loads(proc.stdout.decode("utf-8"))


def sdk_sign(requests):
    """Authorization values from the SDK's Sign.sign3, one per request dict, in one node run."""
    out = run_node(REFERENCE_SIGN_JS, requests)
    if len(out) != len(requests):
        raise AssertionError("reference_sign.js answered %d of %d" % (len(out), len(requests)))
    for item in out:
        if "error" in item:
            raise AssertionError("the SDK signer failed: " + item["error"])
    return [item["authorization"] for item in out]


def sign_request_for(record, body=None, secret_key=gw.DEV_SECRET_KEY):
    """The reference_sign.js input that re-signs a simulator record as the SDK would."""
    headers = record["headers"]
    if body is None:
        body = harness.Simulator.record_body_bytes(record)
    return {
        "host": record["host"],
        "path": record["path"],
        "method": record["method"],
        "content_type": headers["content-type"],
        "body_b64": base64.b64encode(body).decode("ascii"),
        "timestamp": int(headers["x-tc-timestamp"]),
        "service": harness.GAAP_SERVICE,
        "secret_id": gw.DEV_SECRET_ID,
        "secret_key": secret_key,
    }


def sdk_compact_json(params):
    """The body the SDK sends for params (JSON.stringify: no spaces, UTF-8 kept as is)."""
    return json.dumps(params, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class NodeSdkCase(unittest.TestCase):
    """One simulator and one gateway per class; records are cleared before each test."""

    @classmethod
    def setUpClass(cls):
        tmp = tempfile.TemporaryDirectory(prefix="tcgw-node-")
        cls.addClassCleanup(tmp.cleanup)
        cls.sim = harness.Simulator()
        cls.sim.start(os.path.join(tmp.name, "sim"), {gw.DEV_SECRET_ID: gw.DEV_SECRET_KEY},
                      rate_limit=0)
        cls.addClassCleanup(cls.sim.stop)
        cls.gw = gw.Gateway(os.path.join(tmp.name, "gw"), cls.sim.port, cls.sim.ca_file)
        os.makedirs(cls.gw.workdir)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.stop)
        # The caller's own credential: an SDK key this gateway issued, checked, never passed on.
        out = gw.run_tcgw(["callers", "add", "sdk-client", "--sdk-key", "--policy", "allow-all",
                           "--config", cls.gw.config_path]).stdout.decode()
        secret_id = re.search(r"AKIDtcgw[A-Za-z0-9]{28}", out).group(0)
        secret_key = [w for w in re.split(r"[\s:=\"]+", out)
                      if re.fullmatch(r"[A-Za-z0-9]{32}", w)][0]
        cls.credential = {"secretId": secret_id, "secretKey": secret_key}
        cls.gw.reload()

    def setUp(self):
        self.sim.clear_records()

    def assertRecordsSignedAsSdkSigns(self, records):
        """The SDK's Sign.sign3 recomputes exactly the Authorization of every record."""
        self.assertTrue(records)
        expected = sdk_sign([sign_request_for(r) for r in records])
        for rec, want in zip(records, expected):
            got = rec["headers"].get("authorization")
            self.assertEqual(got, want, "tcgw's signature differs from the SDK's for %s" % rec)
            self.assertIsNone(rec["error_code"], "the simulator refused: %s" % rec)
            self.assertTrue(got.startswith("TC3-HMAC-SHA256 Credential=%s/" % gw.DEV_SECRET_ID))
            self.assertNotIn(self.credential["secretId"], json.dumps(rec, ensure_ascii=False))


class TestSdkReferenceSigner(NodeSdkCase):
    """tcgw's TC3-HMAC-SHA256 signatures equal the official SDK's for every forwarded call."""

    def calls(self):
        """(description, target, headers, body bytes, expected upstream host) of each call."""
        gaap = harness.GAAP_HOST
        regional = "gaap.ap-guangzhou.tencentcloudapi.com"
        utf8 = json.dumps({"TagSet": [{"TagKey": "团队", "TagValue": "网页 ✓"}]},
                          ensure_ascii=False).encode("utf-8")
        escaped = b'{"TagSet": [{"TagKey": "\\u56e2\\u961f", "TagValue": "web"}]}'

        def h(action, host=gaap, **extra):
            headers = {"Host": host, "Content-Type": "application/json", "X-TC-Action": action,
                       "X-TC-Version": VERSION}
            headers.update(extra)
            return headers

        return [
            ("seed example", "/", h("ModifyProxyConfiguration"), gw.SEED_BODY, gaap),
            ("DescribeProxies", "/", h("DescribeProxies"), b'{"Limit": 10, "Offset": 0}', gaap),
            ("DescribeAccessRegionsByDestRegion", "/", h("DescribeAccessRegionsByDestRegion"),
             json.dumps({"DestRegion": DEST_REGION}).encode(), gaap),
            ("UTF-8 payload", "/", h("DescribeProxies"), utf8, gaap),
            ("escaped Unicode kept as sent", "/", h("DescribeProxies"), escaped, gaap),
            ("regional host", "/", h("DescribeProxies", regional, **{"X-TC-Region": "ap-guangzhou"}),
             b'{"Filters": [{"Name": "AccessRegion", "Values": ["Guangzhou"]}]}', regional),
            ("empty body", "/", h("DescribeProxies"), b"", gaap),
            ("empty object", "/", h("DescribeProxies"), b"{}", gaap),
            ("Tencent's pretty-printed example", "/", h("ModifyProxyConfiguration"),
             SEED_BODY_PRETTY, gaap),
            ("charset parameter", "/",
             h("DescribeProxies", **{"Content-Type": "application/json; charset=utf-8"}),
             b'{"ProxyIds": ["link-p9888rix"]}', gaap),
            ("absolute-form target", "http://gaap.tencentcloudapi.com/",
             h("DescribeProxies", "127.0.0.1"), b'{"Order": "asc"}', gaap),
            ("service from the path", "/gaap/", h("DescribeProxies", "127.0.0.1"),
             b'{"Order": "desc"}', gaap),
            ("intl host", "/", h("DescribeProxies", "gaap.intl.tencentcloudapi.com"), b"{}",
             "gaap.intl.tencentcloudapi.com"),
            ("caller's own signature is checked and replaced", "/",
             harness.signed_headers(self.credential["secretId"],
                                    self.credential["secretKey"], "DescribeProxies",
                                    b'{"Limit": 1}'),
             b'{"Limit": 1}', gaap),
        ]

    def test_every_forwarded_request_is_signed_as_the_sdk_signs(self):
        calls = self.calls()
        before = int(time.time())
        for desc, target, headers, body, _ in calls:
            status, _, data = self.gw.request("POST", target, headers, body)
            self.assertEqual(status, 200, "%s: %r" % (desc, data))
            answer = json.loads(data)
            self.assertNotIn("Error", answer["Response"], "%s: %s" % (desc, answer))
        after = int(time.time())

        records = self.sim.records()
        self.assertEqual(len(records), len(calls), "one upstream request per call")
        for (desc, _, headers, body, host), rec in zip(calls, records):
            with self.subTest(call=desc):
                self.assertEqual(harness.Simulator.record_body_bytes(rec), body,
                                 "the body must reach Tencent byte for byte")
                self.assertEqual(rec["host"], host)
                self.assertEqual(rec["headers"]["x-tc-action"], headers["X-TC-Action"])
                ts = int(rec["headers"]["x-tc-timestamp"])
                self.assertTrue(before - 1 <= ts <= after + 1, "stale x-tc-timestamp %d" % ts)
                self.assertIsNone(rec["error_code"], rec)
        self.assertRecordsSignedAsSdkSigns(records)

    def test_comparison_detects_a_different_body_or_key(self):
        """The reference check is not vacuous: one changed byte or key changes the SDK's value."""
        status, _, data = self.gw.request("POST", "/", {
            "Host": harness.GAAP_HOST, "Content-Type": "application/json",
            "X-TC-Action": "ModifyProxyConfiguration", "X-TC-Version": VERSION}, gw.SEED_BODY)
        self.assertEqual(status, 200, data)
        (rec,) = self.sim.records()
        same, other_body, other_key = sdk_sign([
            sign_request_for(rec),
            sign_request_for(rec, body=gw.SEED_BODY + b" "),
            sign_request_for(rec, secret_key=gw.DEV_SECRET_KEY[:-1] + "F"),
        ])
        recorded = rec["headers"]["authorization"]
        self.assertEqual(same, recorded)
        self.assertNotEqual(other_body, recorded)
        self.assertNotEqual(other_key, recorded)
        # A third signer (harness.tc3_sign, Python) agrees with the SDK too.
        self.assertEqual(recorded, harness.tc3_sign(
            gw.DEV_SECRET_ID, gw.DEV_SECRET_KEY, rec["host"], harness.GAAP_SERVICE,
            int(rec["headers"]["x-tc-timestamp"]), rec["headers"]["content-type"], gw.SEED_BODY))


class TestSdkAsClient(NodeSdkCase):
    """The SDK's CommonClient, pointed at tcgw, works as it works against Tencent Cloud."""

    def sdk_calls(self, mode, calls):
        results = run_node(SDK_CLIENT_JS, {"port": self.gw.port, "mode": mode,
                                           "credential": self.credential, "calls": calls})
        self.assertEqual(len(results), len(calls))
        return results

    def assertSdkOk(self, result):
        self.assertTrue(result["ok"], result)
        self.assertRegex(result["response"]["RequestId"], UUID_RE)
        return result["response"]

    def assertSdkRefused(self, result, code):
        """tcgw's refusal surfaces in the SDK as TencentCloudSDKHttpException with code/RequestId."""
        self.assertFalse(result["ok"], result)
        err = result["error"]
        self.assertTrue(err["isSdkException"], err)
        self.assertEqual(err["name"], "TencentCloudSDKHttpException")
        self.assertEqual(err["code"], code, err)
        self.assertTrue(err["message"], err)
        self.assertRegex(err["requestId"], UUID_RE)
        return err

    def check_mode(self, mode, expect_request_line=None, host_from_endpoint=True):
        """Runs the SDK calls in mode; host_from_endpoint: the SDK's endpoint names the upstream
        host (false when the endpoint is the gateway's address and the path names the service)."""
        # The SDK signs with a timestamp in seconds, and tcgw accepts a signature once: the same
        # call made by the previous mode in the same second would be a replay. Start afresh.
        # The SDK signs neither the action nor the version, so calls that differ only there carry
        # the same signature in the same second: every call below has a body of its own.
        time.sleep(1.05 - time.time() % 1)
        calls = [
            {"action": "ModifyProxyConfiguration", "params": SEED_PARAMS},
            {"action": "DescribeProxies", "params": {"Offset": 0}},
            {"action": "DescribeProxies", "params": {"ProxyIds": ["link-4ftf12sb"]},
             "endpoint": "gaap.ap-guangzhou.tencentcloudapi.com", "region": "ap-guangzhou"},
            {"action": "DescribeAccessRegionsByDestRegion", "params": {"DestRegion": DEST_REGION}},
            # Refused by the simulator (as Tencent would): passed through unchanged.
            {"action": "ModifyProxyConfiguration",
             "params": {"ProxyId": "link-noscale1", "Bandwidth": 20}},
            # Refused by tcgw itself: never forwarded.
            {"action": "DescribeProxies", "params": {"Bogus": 1}},
            {"action": "DescribeAccessRegionsByDestRegion", "params": {}},
            {"action": "DescribeProxies", "params": {"Order": "sideways"}},
            {"action": "NoSuchActionAnywhere", "params": {"Limit": 1}},
        ]
        (modify, describe, regional, regions, upstream_refusal, bogus, missing, bad_value,
         bad_action) = self.sdk_calls(mode, calls)

        if expect_request_line is not None:
            self.assertEqual(modify["wire"]["requestLine"], expect_request_line)
            self.assertEqual(modify["wire"]["host"], harness.GAAP_HOST)

        # Successful calls: the SDK returns the Response object.
        self.assertEqual(set(self.assertSdkOk(modify)), {"RequestId"}, modify)
        listing = self.assertSdkOk(describe)
        self.assertEqual(listing["TotalCount"], len(FIXTURE_PROXY_IDS))
        self.assertEqual({p["ProxyId"] for p in listing["InstanceSet"]}, FIXTURE_PROXY_IDS)
        one = self.assertSdkOk(regional)
        self.assertEqual([p["ProxyId"] for p in one["InstanceSet"]], ["link-4ftf12sb"])
        self.assertEqual((one["InstanceSet"][0]["Bandwidth"], one["InstanceSet"][0]["Concurrent"]),
                         (10, 2), "the SDK's ModifyProxyConfiguration was applied")
        want_regions = [r["RegionId"] for r in FIXTURE["AccessRegionsByDestRegion"][DEST_REGION]]
        self.assertEqual([r["RegionId"] for r in self.assertSdkOk(regions)["AccessRegionSet"]],
                         want_regions)

        upstream_err = self.assertSdkRefused(upstream_refusal, "FailedOperation.NotSupportScalar")
        self.assertSdkRefused(bogus, "UnknownParameter")
        self.assertIn("Bogus", bogus["error"]["message"])
        self.assertSdkRefused(missing, "MissingParameter")
        self.assertIn("DestRegion", missing["error"]["message"])
        self.assertSdkRefused(bad_value, "InvalidParameterValue")
        self.assertSdkRefused(bad_action, "InvalidAction")

        # What reached the simulator: the five valid calls, signed by tcgw with its own
        # credential, bodies exactly as the SDK serialised them; the refusals never left tcgw.
        records = self.sim.records()
        forwarded = [modify, describe, regional, regions]
        self.assertEqual(len(records), len(forwarded) + 1, records)
        for result, rec in zip(forwarded, records):
            self.assertEqual(rec["request_id"], result["response"]["RequestId"])
        self.assertEqual(records[4]["request_id"], upstream_err["requestId"])
        self.assertEqual(records[4]["error_code"], "FailedOperation.NotSupportScalar")
        refused_ids = {r["error"]["requestId"] for r in (bogus, missing, bad_value, bad_action)}
        self.assertEqual(len(refused_ids), 4, "each refusal has a fresh RequestId")
        self.assertFalse(refused_ids & {r["request_id"] for r in records})
        for call, rec in zip(calls, records):
            host = call.get("endpoint", harness.GAAP_HOST) if host_from_endpoint else \
                harness.GAAP_HOST
            self.assertEqual(rec["host"], host)
            self.assertEqual(rec["action"], call["action"])
            self.assertEqual(harness.Simulator.record_body_bytes(rec),
                             sdk_compact_json(call["params"]))
            if "region" in call:
                self.assertEqual(rec["headers"].get("x-tc-region"), call["region"])
        self.assertTrue(all(r["headers"]["authorization"].startswith(
            "TC3-HMAC-SHA256 Credential=%s/" % gw.DEV_SECRET_ID) for r in records))
        # The last record was refused by the simulator's GAAP logic, not its signature check,
        # so every record, the SDK's calls included, is re-signed by the SDK's own signer.
        self.assertRecordsSignedAsSdkSigns(records[:4])
        self.assertEqual(sdk_sign([sign_request_for(records[4])])[0],
                         records[4]["headers"]["authorization"])

    def test_sdk_through_host_header(self):
        """The SDK sends exactly what it sends to Tencent (POST / with Host), over plain HTTP."""
        self.check_mode("host", "POST / HTTP/1.1")

    def test_sdk_as_forward_proxy_client(self):
        """An HTTP forward-proxy agent sends absolute-form targets; tcgw takes them."""
        self.check_mode("forward-proxy", "POST http://gaap.tencentcloudapi.com/ HTTP/1.1")

    def test_sdk_with_gateway_endpoint_and_service_path(self):
        """No custom agent: httpProfile.endpoint "127.0.0.1:<port>/gaap" (service from the path)."""
        self.check_mode("path", host_from_endpoint=False)

    def test_sdk_builtin_proxy_option_fails_closed(self):
        """httpProfile.proxy tunnels with CONNECT, which tcgw does not offer: the SDK gets an error
        promptly and nothing is forwarded (documents why the tests use an agent instead)."""
        started = time.monotonic()
        (result,) = self.sdk_calls("sdk-proxy", [
            {"action": "ModifyProxyConfiguration", "params": SEED_PARAMS, "timeout": 10}])
        self.assertLess(time.monotonic() - started, 15)
        self.assertFalse(result["ok"], result)
        self.assertTrue(result["error"]["isSdkException"], result)
        self.assertEqual(self.sim.records(), [], "a CONNECT tunnel must not lead to Tencent")


if __name__ == "__main__":
    unittest.main()
