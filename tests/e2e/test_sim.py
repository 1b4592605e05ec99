"""Drives tcgw-sim (the GAAP upstream double) directly over TLS.

Run: cd tests/e2e && TCGW_SIM_BIN=... TCGW_SOURCE_DIR=... python3 -m unittest -v test_sim
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

import harness

SECRET_ID = "AKIDsimTEST0000000000000001EXAMPLE"
SECRET_KEY = "simTestKey00000000000000000000001"
OTHER_ID = "AKIDsimTEST0000000000000002EXAMPLE"
OTHER_KEY = "simTestKey00000000000000000000002"
CREDENTIALS = {SECRET_ID: SECRET_KEY, OTHER_ID: OTHER_KEY}

# The request body of Tencent's ModifyProxyConfiguration example, byte for byte.
SEED_BODY = (b'{\n    "ProxyId": "link-4ftf12sb",\n    "Concurrent": "2",\n'
             b'    "Bandwidth": "10"\n}')
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
FIXTURE_IDS = {"link-4ftf12sb", "link-p9888rix", "link-noscale1", "link-cq2sh7a1"}

_certs_dir = None
CERTS = None


def setUpModule():
    global _certs_dir, CERTS
    _certs_dir = tempfile.TemporaryDirectory(prefix="tcgw-sim-certs-")
    CERTS = harness.make_certs(Path(_certs_dir.name) / "certs")


def tearDownModule():
    _certs_dir.cleanup()


class SimTestCase(unittest.TestCase):
    rate_limit = 20
    max_skew = 300
    credentials = CREDENTIALS
    more_fixtures = ()  # files laid over the default fixture

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="tcgw-sim-")
        self.addCleanup(tmp.cleanup)
        self.sim = harness.Simulator()
        extra = [arg for path in self.more_fixtures for arg in ("--fixture", str(path))]
        self.sim.start(tmp.name, self.credentials, rate_limit=self.rate_limit,
                       max_skew=self.max_skew, certs=CERTS, extra_args=extra)
        self.addCleanup(self.sim.stop)

    # -- helpers --

    def post(self, headers, body):
        return harness.https_post(self.sim.port, headers.get("Host", harness.GAAP_HOST), headers,
                                  body, self.sim.ca_file)

    def call(self, action, params=None, body=None, secret_id=SECRET_ID, secret_key=SECRET_KEY,
             **kw):
        if body is None:
            body = json.dumps(params if params is not None else {}).encode("utf-8")
        headers = harness.signed_headers(secret_id, secret_key, action, body, **kw)
        resp = self.post(headers, body)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.headers.get("content-type"), "application/json")
        return resp.json()["Response"]

    def assertOk(self, response):
        self.assertNotIn("Error", response, response)
        self.assertRegex(response["RequestId"], UUID_RE)

    def assertError(self, response, code):
        self.assertIn("Error", response, response)
        self.assertEqual(response["Error"]["Code"], code, response)
        self.assertTrue(response["Error"]["Message"])
        self.assertRegex(response["RequestId"], UUID_RE)
        self.assertEqual(set(response), {"Error", "RequestId"})

    def last_record(self):
        records = self.sim.records()
        self.assertTrue(records, "the simulator recorded nothing")
        return records[-1]

    def proxies(self):
        r = self.call("DescribeProxies", {"Limit": 100})
        self.assertOk(r)
        return {p["ProxyId"]: p for p in r["ProxySet"]}

    def modify(self, params, **kw):
        return self.call("ModifyProxyConfiguration", params, **kw)


class SignerVectorTest(unittest.TestCase):
    """The Python signer reproduces Tencent's published and SDK-generated vectors."""

    def test_vectors(self):
        shared = harness.shared_dir()
        if shared is None or not list((shared / "vectors").glob("*.json")):
            self.skipTest("TCGW_SHARED_DIR/vectors not available: signer vectors skipped")
        count = 0
        for path in sorted((shared / "vectors").glob("*.json")):
            for v in json.loads(path.read_text(encoding="utf-8"))["vectors"]:
                with self.subTest(file=path.name, vector=v["name"]):
                    parts = harness.tc3_parts(v["secretId"], v["secretKey"], v["host"],
                                              v["service"], v["timestamp"], v["contentType"],
                                              v["payload"].encode("utf-8"), v.get("action"))
                    self.assertEqual(parts["date"], v["date"])
                    for key in ("canonical_request", "hashed_canonical_request",
                                "string_to_sign", "signature", "authorization",
                                "hashed_payload", "signing_key_hex"):
                        if key in v:
                            self.assertEqual(parts[key], v[key], key)
                    if "published_signature" in v:
                        self.assertEqual(parts["signature"], v["published_signature"])
                    count += 1
        self.assertGreater(count, 0)


class TlsTest(SimTestCase):
    def health(self, **kw):
        with harness.HttpsClient(self.sim.port, self.sim.ca_file, **kw) as c:
            return c.request("GET", "/_sim/health", {"Host": harness.GAAP_HOST})

    def test_health(self):
        r = self.health()
        self.assertEqual((r.status, r.body), (200, b"ok"))
        self.assertEqual(self.sim.records(), [], "health checks are not recorded")

    def test_certificate_names(self):
        for name in ("gaap.tencentcloudapi.com", "gaap.intl.tencentcloudapi.com",
                     "gaap.ap-guangzhou.tencentcloudapi.com", "localhost"):
            with self.subTest(name=name):
                self.assertEqual(self.health(server_hostname=name).status, 200)

    def test_untrusted_ca_fails(self):
        ctx = ssl.create_default_context()  # system roots only, not the dev CA
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.health(context=ctx)
        self.assertEqual(self.health().status, 200, "the simulator survives the failed handshake")

    def test_wrong_hostname_fails(self):
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.health(server_hostname="gaap.example.com")

    def test_plain_http_is_refused(self):
        with socket.create_connection(("127.0.0.1", self.sim.port), timeout=5) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            data = s.recv(4096)
        self.assertFalse(data.startswith(b"HTTP/1.1 200"), data)
        self.assertEqual(self.health().status, 200)


class ModifyTest(SimTestCase):
    def test_seed_request_succeeds_and_is_recorded_exactly(self):
        ts = int(time.time())
        headers = harness.signed_headers(SECRET_ID, SECRET_KEY, "ModifyProxyConfiguration",
                                         SEED_BODY, timestamp=ts)
        resp = self.post(headers, SEED_BODY)
        self.assertEqual(resp.status, 200)
        doc = resp.json()
        self.assertEqual(set(doc), {"Response"})
        self.assertEqual(set(doc["Response"]), {"RequestId"})
        self.assertRegex(doc["Response"]["RequestId"], UUID_RE)

        rec = self.last_record()
        self.assertEqual(rec["method"], "POST")
        self.assertEqual(rec["path"], "/")
        self.assertEqual(rec["host"], "gaap.tencentcloudapi.com")
        self.assertEqual(rec["body"].encode("utf-8"), SEED_BODY)
        self.assertEqual(harness.Simulator.record_body_bytes(rec), SEED_BODY)
        self.assertEqual(rec["body_bytes"], len(SEED_BODY))
        self.assertEqual(rec["action"], "ModifyProxyConfiguration")
        self.assertIsNone(rec["error_code"])
        self.assertEqual(rec["request_id"], doc["Response"]["RequestId"])
        expected = {k.lower(): v for k, v in headers.items()}
        expected["content-length"] = str(len(SEED_BODY))
        self.assertEqual(rec["headers"], expected)
        self.assertNotIn("sign_debug", rec)

        p = self.proxies()["link-4ftf12sb"]
        self.assertEqual((p["Bandwidth"], p["Concurrent"]), (10, 2))
        self.assertIsInstance(p["ModifyConfigTime"], int)

    def test_official_instance_id_example_with_integers(self):
        r = self.modify({"InstanceId": "link-p9888rix", "Bandwidth": 20, "Concurrent": 2})
        self.assertOk(r)
        p = self.proxies()["link-p9888rix"]
        self.assertEqual((p["Bandwidth"], p["Concurrent"]), (20, 2))

    def test_charset_content_type_and_signed_action_header(self):
        r = self.modify({"ProxyId": "link-4ftf12sb", "Bandwidth": 50},
                        content_type="application/json; charset=utf-8", sign_action=True,
                        region="ap-guangzhou")
        self.assertOk(r)
        rec = self.last_record()
        self.assertIn("SignedHeaders=content-type;host;x-tc-action,",
                      rec["headers"]["authorization"])
        self.assertEqual(rec["headers"]["x-tc-region"], "ap-guangzhou")

    def test_each_request_gets_a_fresh_request_id(self):
        ids = {self.modify({"ProxyId": "link-4ftf12sb", "Bandwidth": 20})["RequestId"]
               for _ in range(3)}
        self.assertEqual(len(ids), 3)

    def test_resource_not_found(self):
        r = self.modify({"ProxyId": "link-doesnotx", "Bandwidth": 10})
        self.assertError(r, "ResourceNotFound")
        self.assertEqual(self.last_record()["error_code"], "ResourceNotFound")

    def test_not_support_scalar(self):
        r = self.modify({"ProxyId": "link-noscale1", "Bandwidth": 100})
        self.assertError(r, "FailedOperation.NotSupportScalar")
        self.assertEqual(self.proxies()["link-noscale1"]["Bandwidth"], 50)

    def test_out_of_range_values(self):
        cases = [
            {"ProxyId": "link-4ftf12sb", "Bandwidth": 30},
            {"ProxyId": "link-4ftf12sb", "Concurrent": 3},
            {"ProxyId": "link-4ftf12sb", "Bandwidth": "10", "Concurrent": "40"},
            {"ProxyId": "link-4ftf12sb", "Bandwidth": -10},
            # 500 Mbps is offered from Guangzhou to Hongkong but not from Shanghai to SiliconValley
            {"ProxyId": "link-p9888rix", "Bandwidth": 500},
        ]
        for params in cases:
            with self.subTest(params=params):
                self.assertError(self.modify(params), "InvalidParameterValue")
        p = self.proxies()
        self.assertEqual((p["link-4ftf12sb"]["Bandwidth"], p["link-4ftf12sb"]["Concurrent"]),
                         (20, 5))
        self.assertEqual(p["link-p9888rix"]["Bandwidth"], 10)

    def test_parameter_errors(self):
        cases = [
            ({"Bandwidth": 10}, "MissingParameter"),
            ({"ProxyId": "link-4ftf12sb"}, "MissingParameter"),
            ({"ProxyId": "link-4ftf12sb", "Bandwidth": "ten"}, "InvalidParameter"),
            ({"ProxyId": "link-4ftf12sb", "Bandwidth": 10.5}, "InvalidParameter"),
            ({"ProxyId": 7, "Bandwidth": 10}, "InvalidParameter"),
            ({"ProxyId": "link-4ftf12sb", "InstanceId": "link-p9888rix", "Bandwidth": 10},
             "InvalidParameter"),
            ({"ProxyId": "link-4ftf12sb", "Bandwidth": 10, "Colour": "red"}, "UnknownParameter"),
            ({"ProxyId": "link-4ftf12sb", "Bandwidth": 10, "BillingType": 2},
             "InvalidParameterValue"),
            ({"ProxyId": "link-4ftf12sb", "Bandwidth": 10, "ClientToken": "x" * 65},
             "InvalidParameterValue"),
        ]
        for params, code in cases:
            with self.subTest(params=params):
                self.assertError(self.modify(params), code)

    def test_client_token_replay_with_same_parameters_succeeds(self):
        first = self.modify({"ProxyId": "link-4ftf12sb", "Bandwidth": "10", "Concurrent": "2",
                             "ClientToken": "tok-same-1"})
        self.assertOk(first)
        # Same canonical parameters ("10" and 10 are the same value): success again, fresh id.
        again = self.modify({"ProxyId": "link-4ftf12sb", "Concurrent": 2, "Bandwidth": 10,
                             "ClientToken": "tok-same-1"})
        self.assertOk(again)
        self.assertNotEqual(first["RequestId"], again["RequestId"])
        # InstanceId names the same proxy, so it is the same request too.
        self.assertOk(self.modify({"InstanceId": "link-4ftf12sb", "Concurrent": 2,
                                   "Bandwidth": 10, "ClientToken": "tok-same-1"}))
        p = self.proxies()["link-4ftf12sb"]
        self.assertEqual((p["Bandwidth"], p["Concurrent"]), (10, 2))

    def test_client_token_with_different_parameters_is_duplicated(self):
        self.assertOk(self.modify({"ProxyId": "link-4ftf12sb", "Bandwidth": 50,
                                   "ClientToken": "tok-dup-1"}))
        for params in ({"ProxyId": "link-4ftf12sb", "Bandwidth": 100},
                       {"ProxyId": "link-4ftf12sb", "Bandwidth": 50, "Concurrent": 2},
                       {"ProxyId": "link-cq2sh7a1", "Bandwidth": 50}):
            with self.subTest(params=params):
                r = self.modify(dict(params, ClientToken="tok-dup-1"))
                self.assertError(r, "FailedOperation.DuplicatedRequest")
        p = self.proxies()
        self.assertEqual(p["link-4ftf12sb"]["Bandwidth"], 50)
        self.assertEqual(p["link-cq2sh7a1"]["Bandwidth"], 100)

    def test_failed_request_does_not_consume_its_token(self):
        r = self.modify({"ProxyId": "link-4ftf12sb", "Bandwidth": 30, "ClientToken": "tok-f"})
        self.assertError(r, "InvalidParameterValue")
        r = self.modify({"ProxyId": "link-4ftf12sb", "Bandwidth": 200, "ClientToken": "tok-f"})
        self.assertOk(r)
        self.assertEqual(self.proxies()["link-4ftf12sb"]["Bandwidth"], 200)


class AuthTest(SimTestCase):
    BODY = b'{"ProxyId":"link-4ftf12sb","Bandwidth":100}'
    ACTION = "ModifyProxyConfiguration"

    def headers(self, **kw):
        return harness.signed_headers(SECRET_ID, SECRET_KEY, self.ACTION, self.BODY, **kw)

    def send(self, headers, body=None):
        resp = self.post(headers, self.BODY if body is None else body)
        self.assertEqual(resp.status, 200)
        return resp.json()["Response"]

    def assertUnchanged(self):
        self.assertEqual(self.proxies()["link-4ftf12sb"]["Bandwidth"], 20)

    def test_valid_signature_with_second_key(self):
        headers = harness.signed_headers(OTHER_ID, OTHER_KEY, self.ACTION, self.BODY)
        self.assertOk(self.send(headers))

    def test_bad_signature(self):
        h = self.headers()
        sig = h["Authorization"][-64:]
        flipped = ("0" if sig[-1] != "0" else "1")
        h["Authorization"] = h["Authorization"][:-1] + flipped
        self.assertError(self.send(h), "AuthFailure.SignatureFailure")
        rec = self.last_record()
        self.assertEqual(rec["error_code"], "AuthFailure.SignatureFailure")
        self.assertIn("canonical_request", rec["sign_debug"])
        self.assertUnchanged()

    def test_signature_with_wrong_key(self):
        h = harness.signed_headers(SECRET_ID, OTHER_KEY, self.ACTION, self.BODY)
        self.assertError(self.send(h), "AuthFailure.SignatureFailure")

    def test_missing_and_malformed_authorization(self):
        good = self.headers()["Authorization"]
        variants = {
            "missing": None,
            "other scheme": "Bearer abc",
            "no fields": "TC3-HMAC-SHA256",
            "garbage": "TC3-HMAC-SHA256 garbage",
            "short signature": good[:-2],
            "uppercase signature": good[:-64] + good[-64:].upper(),
            "no signed headers": re.sub(r"SignedHeaders=[^,]*, ", "", good),
            "repeated part": good + ", Signature=" + good[-64:],
            "bad credential": re.sub(r"Credential=[^,]*", "Credential=AKIDonly", good),
        }
        for name, value in variants.items():
            with self.subTest(variant=name):
                h = self.headers()
                if value is None:
                    del h["Authorization"]
                else:
                    h["Authorization"] = value
                self.assertError(self.send(h), "AuthFailure.SignatureFailure")
        self.assertUnchanged()

    def test_body_tampered_after_signing(self):
        h = self.headers()
        tampered = self.BODY.replace(b"100", b"200")
        self.assertError(self.send(h, tampered), "AuthFailure.SignatureFailure")
        rec = self.last_record()
        self.assertEqual(rec["body"].encode(), tampered)
        canonical = rec["sign_debug"]["canonical_request"]
        self.assertTrue(canonical.endswith(hashlib.sha256(tampered).hexdigest()))
        self.assertUnchanged()

    def test_host_differs_from_signed_host(self):
        h = self.headers()
        h["Host"] = "gaap.intl.tencentcloudapi.com"
        self.assertError(self.send(h), "AuthFailure.SignatureFailure")
        # Signed for the host it is sent to: fine.
        h = self.headers(host="gaap.intl.tencentcloudapi.com")
        self.assertOk(self.send(h))

    def test_header_values_trimmed_and_lowercased(self):
        h = self.headers(content_type="Application/JSON; charset=UTF-8")
        self.assertOk(self.send(h))

    def test_expired_timestamp_both_directions(self):
        now = int(time.time())
        for ts in (now - 1000, now + 1000):
            with self.subTest(timestamp=ts):
                self.assertError(self.send(self.headers(timestamp=ts)),
                                 "AuthFailure.SignatureExpire")
        self.assertOk(self.send(self.headers(timestamp=now - 200)))
        self.assertOk(self.send(self.headers(timestamp=now + 200)))

    def test_unknown_secret_id(self):
        h = harness.signed_headers("AKIDnobodyknowsthisidEXAMPLE", SECRET_KEY, self.ACTION, self.BODY)
        self.assertError(self.send(h), "AuthFailure.SecretIdNotFound")

    def test_scope_date_not_matching_timestamp(self):
        now = int(time.time())
        h = self.headers(timestamp=now)
        yesterday = harness.tc3_sign(SECRET_ID, SECRET_KEY, harness.GAAP_HOST, "gaap",
                                     now - 86400, "application/json", self.BODY)
        h["Authorization"] = yesterday  # credential date is yesterday, X-TC-Timestamp is now
        r = self.send(h)
        self.assertError(r, "AuthFailure.SignatureFailure")
        self.assertIn("date", r["Error"]["Message"])

    def test_wrong_service_in_scope(self):
        h = self.headers(service="cvm")
        r = self.send(h)
        self.assertError(r, "AuthFailure.SignatureFailure")
        self.assertIn("service", r["Error"]["Message"])

    def test_signed_headers_must_include_content_type_and_host(self):
        ts = int(time.time())
        date = time.strftime("%Y-%m-%d", time.gmtime(ts))
        h = self.headers(timestamp=ts)
        for signed in ("content-type", "host", "host;x-tc-action"):
            with self.subTest(signed=signed):
                h["Authorization"] = (f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{date}/gaap/"
                                      f"tc3_request, SignedHeaders={signed}, Signature={'a' * 64}")
                r = self.send(h)
                self.assertError(r, "AuthFailure.SignatureFailure")
                self.assertIn("content-type and host", r["Error"]["Message"])

    def test_signed_header_absent_from_request(self):
        h = self.headers(region="ap-guangzhou")
        h["Authorization"] = h["Authorization"].replace(
            "SignedHeaders=content-type;host", "SignedHeaders=content-type;host;x-tc-token")
        self.assertError(self.send(h), "AuthFailure.SignatureFailure")


class HeaderAndBodyTest(SimTestCase):
    def test_invalid_action(self):
        self.assertError(self.call("DeleteEverything", {}), "InvalidAction")
        self.assertError(self.call("describeproxies", {}), "InvalidAction")
        self.assertEqual(self.last_record()["action"], "describeproxies")

    def test_no_such_version(self):
        self.assertError(self.call("DescribeProxies", {}, version="2017-01-01"), "NoSuchVersion")

    def test_missing_common_headers(self):
        for name in ("X-TC-Action", "X-TC-Version", "X-TC-Timestamp"):
            with self.subTest(header=name):
                h = harness.signed_headers(SECRET_ID, SECRET_KEY, "DescribeProxies", b"{}")
                del h[name]
                r = self.post(h, b"{}").json()["Response"]
                self.assertError(r, "MissingParameter")
                self.assertIn(name, r["Error"]["Message"])

    def test_bad_timestamp_text(self):
        h = harness.signed_headers(SECRET_ID, SECRET_KEY, "DescribeProxies", b"{}")
        h["X-TC-Timestamp"] = "12ab"
        self.assertError(self.post(h, b"{}").json()["Response"], "InvalidParameterValue")

    def test_wrong_content_type(self):
        r = self.call("DescribeProxies", {}, content_type="text/plain")
        self.assertError(r, "InvalidParameter")

    def test_malformed_json_bodies(self):
        for body in (b'{"ProxyId": ', b"[1, 2]", b'"text"', b"{} {}",
                     b'{"Limit": 1, "Limit": 2}', b"[" * 100000):
            with self.subTest(body=body[:20]):
                r = self.call("DescribeProxies", body=body)
                self.assertError(r, "InvalidParameter")
                self.assertEqual(self.last_record()["body"].encode(), body)

    def test_empty_body_is_an_empty_object(self):
        self.assertOk(self.call("DescribeProxies", body=b""))

    def test_invalid_utf8_body_is_recorded_exactly(self):
        body = b'{"ProxyName": "\xff\xfe"}'
        self.assertError(self.call("DescribeProxies", body=body), "InvalidParameter")
        rec = self.last_record()
        self.assertIsNone(rec["body"])
        self.assertEqual(harness.Simulator.record_body_bytes(rec), body)

    def test_body_size_limit(self):
        body = b'{"Limit": 1, "Pad": "' + b"x" * (1 << 20) + b'"}'
        self.assertError(self.call("DescribeProxies", body=body), "RequestSizeLimitExceeded")
        rec = self.last_record()
        self.assertIsNone(rec["body"])
        self.assertEqual(rec["body_bytes"], len(body))

    def test_other_methods_and_paths(self):
        with harness.HttpsClient(self.sim.port, self.sim.ca_file) as c:
            r = c.request("GET", "/", {"Host": harness.GAAP_HOST}).json()["Response"]
            self.assertError(r, "UnsupportedProtocol")
            h = harness.signed_headers(SECRET_ID, SECRET_KEY, "DescribeProxies", b"{}")
            r = c.request("POST", "/v2", h, b"{}").json()["Response"]
            self.assertError(r, "UnsupportedProtocol")
        recs = self.sim.records()
        self.assertEqual([(x["method"], x["path"]) for x in recs], [("GET", "/"), ("POST", "/v2")])

    def test_duplicated_common_header(self):
        h = harness.signed_headers(SECRET_ID, SECRET_KEY, "DescribeProxies", b"{}")
        with harness.HttpsClient(self.sim.port, self.sim.ca_file) as c:
            c.conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
            for k, v in h.items():
                c.conn.putheader(k, v)
            c.conn.putheader("X-TC-Action", "DescribeProxies")
            c.conn.putheader("Content-Length", "2")
            c.conn.endheaders(b"{}")
            r = json.loads(c.conn.getresponse().read())["Response"]
        self.assertError(r, "InvalidParameter")
        self.assertEqual(self.last_record()["headers"]["x-tc-action"],
                         "DescribeProxies, DescribeProxies")

    def test_records_match_answers(self):
        answers = [self.call("DescribeProxies", {}), self.call("DescribeProxies", {"Limit": 500}),
                   self.call("NoSuchThing", {})]
        recs = self.sim.records()
        self.assertEqual(len(recs), 3)
        for answer, rec in zip(answers, recs):
            self.assertEqual(rec["request_id"], answer["RequestId"])
            self.assertEqual(rec["error_code"], answer.get("Error", {}).get("Code"))
        self.sim.clear_records()
        self.assertEqual(self.sim.records(), [])
        self.call("DescribeProxies", {})
        self.assertEqual(len(self.sim.records()), 1)


class RateLimitTest(SimTestCase):
    rate_limit = 3

    def test_requests_beyond_the_rate_are_refused(self):
        results = []
        with harness.HttpsClient(self.sim.port, self.sim.ca_file) as c:
            start = time.monotonic()
            for _ in range(10):
                h = harness.signed_headers(SECRET_ID, SECRET_KEY, "DescribeProxies", b"{}")
                results.append((time.monotonic() - start, c.post(h["Host"], h, b"{}").json()))
            # Another action has its own budget.
            h = harness.signed_headers(SECRET_ID, SECRET_KEY,
                                       "DescribeAccessRegionsByDestRegion",
                                       b'{"DestRegion":"Hongkong"}')
            other = c.post(h["Host"], h, b'{"DestRegion":"Hongkong"}').json()["Response"]
        codes = [r["Response"].get("Error", {}).get("Code") for _, r in results]
        self.assertEqual(codes[:3], [None, None, None], codes)
        if results[3][0] < 0.9:  # the 4th was sent within the same second as the 1st
            self.assertEqual(codes[3], "RequestLimitExceeded", codes)
        self.assertIn("RequestLimitExceeded", codes)
        # Never more than 3 successes in any one-second span.
        ok_times = [t for (t, r), code in zip(results, codes) if code is None]
        for i in range(len(ok_times) - 3):
            self.assertGreaterEqual(ok_times[i + 3] - ok_times[i], 0.9, codes)
        self.assertOk(other)
        time.sleep(1.1)
        self.assertOk(self.call("DescribeProxies", {}))


class DescribeProxiesTest(SimTestCase):
    def describe(self, params):
        return self.call("DescribeProxies", params)

    def test_returns_the_fixture(self):
        r = self.describe({"Limit": 100})
        self.assertOk(r)
        self.assertEqual(r["TotalCount"], 4)
        self.assertEqual(r["ProxySet"], r["InstanceSet"])
        self.assertEqual({p["ProxyId"] for p in r["ProxySet"]}, FIXTURE_IDS)
        times = [p["CreateTime"] for p in r["ProxySet"]]
        self.assertEqual(times, sorted(times, reverse=True), "default order: newest first")
        for p in r["ProxySet"]:
            self.assertEqual(p["InstanceId"], p["ProxyId"])
            for field in ("ProxyName", "AccessRegion", "RealServerRegion", "Bandwidth",
                          "Concurrent", "Status", "Scalarable", "ProjectId", "CreateTime",
                          "AccessRegionInfo", "RealServerRegionInfo"):
                self.assertIn(field, p)
            self.assertEqual(p["AccessRegionInfo"]["RegionId"], p["AccessRegion"])
        seed = next(p for p in r["ProxySet"] if p["ProxyId"] == "link-4ftf12sb")
        self.assertEqual((seed["Scalarable"], seed["AccessRegion"], seed["RealServerRegion"]),
                         (1, "Guangzhou", "Hongkong"))
        named = next(p for p in r["ProxySet"] if p["ProxyId"] == "link-p9888rix")
        self.assertEqual(named["ProxyName"], "加速-上海-硅谷")

    def test_official_example_offset_and_limit(self):
        r = self.describe({"Offset": 0, "Limit": 1})
        self.assertEqual((r["TotalCount"], len(r["ProxySet"])), (4, 1))
        r = self.describe({"Offset": "1", "Limit": "2"})
        self.assertEqual((r["TotalCount"], len(r["ProxySet"])), (4, 2))
        r = self.describe({"Offset": 10})
        self.assertEqual((r["TotalCount"], r["ProxySet"]), (4, []))

    def test_filters(self):
        def ids(filters, **extra):
            r = self.describe(dict({"Filters": filters}, **extra))
            self.assertOk(r)
            return {p["ProxyId"] for p in r["ProxySet"]}

        self.assertEqual(ids([{"Name": "AccessRegion", "Values": ["Guangzhou"]}]),
                         {"link-4ftf12sb", "link-noscale1"})
        self.assertEqual(ids([{"Name": "ProjectId", "Values": ["1001"]}]),
                         {"link-p9888rix", "link-noscale1"})
        self.assertEqual(ids([{"Name": "RealServerRegion", "Values": ["Hongkong", "Shanghai"]}]),
                         {"link-4ftf12sb", "link-noscale1", "link-cq2sh7a1"})
        self.assertEqual(ids([{"Name": "GroupId", "Values": ["lg-7xk2m4qa"]}]),
                         {"link-p9888rix", "link-cq2sh7a1"})
        self.assertEqual(ids([{"Name": "AccessRegion", "Values": ["Guangzhou"]},
                              {"Name": "ProjectId", "Values": ["0"]}]), {"link-4ftf12sb"})
        self.assertEqual(ids([], Independent=1), {"link-4ftf12sb", "link-noscale1"})
        self.assertEqual(ids([], TagSet=[{"TagKey": "team", "TagValue": "games"}]),
                         {"link-p9888rix"})

    def test_ids_and_ordering(self):
        r = self.describe({"ProxyIds": ["link-noscale1", "link-4ftf12sb", "link-nothere1"]})
        self.assertEqual({p["ProxyId"] for p in r["ProxySet"]}, {"link-noscale1", "link-4ftf12sb"})
        r = self.describe({"InstanceIds": ["link-cq2sh7a1"]})
        self.assertEqual([p["ProxyId"] for p in r["InstanceSet"]], ["link-cq2sh7a1"])
        r = self.describe({"OrderField": "bandwidth", "Order": "asc"})
        self.assertEqual([p["Bandwidth"] for p in r["ProxySet"]], [10, 20, 50, 100])

    def test_query_errors(self):
        cases = [
            ({"ProxyIds": ["link-4ftf12sb"], "Filters": []}, "InvalidParameter"),
            ({"ProxyIds": "link-4ftf12sb"}, "InvalidParameter"),
            ({"Filters": [{"Name": "Colour", "Values": ["red"]}]}, "InvalidParameterValue"),
            ({"Filters": [{"Name": "AccessRegion", "Values": ["a"] * 6}]},
             "InvalidParameterValue"),
            ({"Limit": 101}, "InvalidParameterValue"),
            ({"Offset": -1}, "InvalidParameterValue"),
            ({"Order": "sideways"}, "InvalidParameterValue"),
            ({"Unknown": 1}, "UnknownParameter"),
        ]
        for params, code in cases:
            with self.subTest(params=params):
                self.assertError(self.describe(params), code)

    def test_reflects_a_successful_modify(self):
        self.assertOk(self.modify({"ProxyId": "link-cq2sh7a1", "Bandwidth": 500,
                                   "Concurrent": "30", "BillingType": 0}))
        p = self.describe({"ProxyIds": ["link-cq2sh7a1"]})["ProxySet"][0]
        self.assertEqual((p["Bandwidth"], p["Concurrent"], p["BillingType"]), (500, 30, 0))


class AccessRegionsTest(SimTestCase):
    def test_lists_for_a_destination(self):
        r = self.call("DescribeAccessRegionsByDestRegion", {"DestRegion": "Hongkong"})
        self.assertOk(r)
        self.assertEqual(r["TotalCount"], len(r["AccessRegionSet"]))
        gz = next(x for x in r["AccessRegionSet"] if x["RegionId"] == "Guangzhou")
        self.assertEqual(gz["BandwidthList"], [10, 20, 50, 100, 200, 500, 1000])
        self.assertEqual(gz["ConcurrentList"], [2, 5, 10, 20, 30])
        for field in ("RegionName", "RegionArea", "RegionAreaName", "IDCType", "FeatureBitmap"):
            self.assertIn(field, gz)

    def test_lists_agree_with_modify(self):
        r = self.call("DescribeAccessRegionsByDestRegion", {"DestRegion": "SiliconValley"})
        sh = next(x for x in r["AccessRegionSet"] if x["RegionId"] == "Shanghai")
        for bw in sh["BandwidthList"]:
            self.assertOk(self.modify({"ProxyId": "link-p9888rix", "Bandwidth": bw}))
        self.assertError(self.modify({"ProxyId": "link-p9888rix",
                                      "Bandwidth": max(sh["BandwidthList"]) * 2}),
                         "InvalidParameterValue")

    def test_errors(self):
        self.assertError(self.call("DescribeAccessRegionsByDestRegion", {}), "MissingParameter")
        self.assertError(self.call("DescribeAccessRegionsByDestRegion", {"DestRegion": "Mars"}),
                         "InvalidParameterValue")
        self.assertError(self.call("DescribeAccessRegionsByDestRegion", {"DestRegion": 3}),
                         "InvalidParameter")
        self.assertError(self.call("DescribeAccessRegionsByDestRegion",
                                   {"DestRegion": "Hongkong", "IPAddressVersion": "IPv5"}),
                         "InvalidParameterValue")


class RobustnessTest(SimTestCase):
    rate_limit = 0

    def alive(self):
        with harness.HttpsClient(self.sim.port, self.sim.ca_file) as c:
            self.assertEqual(c.request("GET", "/_sim/health", {"Host": "x"}).body, b"ok")

    def test_garbage_connections(self):
        for payload in (b"\x16\x03\x01\x00\xff" + b"\x00" * 300, b"\x00" * 64, b"GET /\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", self.sim.port), timeout=5) as s:
                s.sendall(payload)
                try:
                    s.recv(1024)
                except OSError:
                    pass
        ctx = harness.tls_context(self.sim.ca_file)
        with socket.create_connection(("127.0.0.1", self.sim.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=harness.GAAP_HOST) as s:
                s.sendall(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n{")
                try:
                    s.recv(1024)
                except OSError:
                    pass
        self.alive()

    def test_concurrent_clients(self):
        errors = []

        def worker(n):
            try:
                for i in range(5):
                    bw = [10, 20, 50, 100, 200][(n + i) % 5]
                    r = self.modify({"ProxyId": "link-4ftf12sb", "Bandwidth": bw})
                    if "Error" in r:
                        errors.append(r)
            except Exception as e:  # reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        recs = self.sim.records()
        self.assertEqual(len(recs), 30)
        self.assertEqual(len({r["request_id"] for r in recs}), 30)


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="tcgw-sim-")
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)

    def test_sigint_exits_cleanly(self):
        sim = harness.Simulator().start(self.dir, CREDENTIALS, certs=CERTS)
        self.addCleanup(sim.stop)
        proc = sim.proc
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(timeout=15), 0, sim.stderr_text())

    def test_usage_errors_exit_2(self):
        for args in ([], ["--port", "70000"], ["--rate-limit", "x"], ["--bogus"]):
            with self.subTest(args=args):
                proc = subprocess.run([harness.Simulator().binary, *args], capture_output=True,
                                      timeout=30, check=False)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(b"tcgw-sim", proc.stderr)

    def test_refuses_a_key_readable_by_others(self):
        key = self.dir / "loose.key"
        shutil.copyfile(CERTS["server_key"], key)
        os.chmod(key, 0o644)
        with self.assertRaisesRegex(RuntimeError, "chmod 600"):
            harness.Simulator().start(self.dir, CREDENTIALS,
                                      certs=dict(CERTS, server_key=str(key)))

    def test_refuses_a_bad_fixture(self):
        fixture = {"Proxies": [{"ProxyId": "link-x"}], "AccessRegionsByDestRegion": {}}
        with self.assertRaisesRegex(RuntimeError, r"Proxies\[0\]"):
            harness.Simulator().start(self.dir, CREDENTIALS, certs=CERTS, fixture=fixture)


# ---- states: tests/sim/states.json over the default fixture, keys of every kind ----

STATES = harness.source_dir() / "tests" / "sim" / "states.json"
SUB_ID, SUB_KEY = "AKIDsimTESTsub0000000000000EXAMPLE", "simTestKeySub00000000000000000001"
NONE_ID, NONE_KEY = "AKIDsimTESTnone000000000000EXAMPLE", "simTestKeyNone0000000000000000001"
REFUSED_ID, REFUSED_KEY = "AKIDsimTESTrefused000000000EXAMPLE", "simTestKeyRefused00000000000001"
ACCOUNT_IDS = {name: ("AKIDsimTEST%s" % name.replace("-", "")[:10], "simTestKey-" + name)
               for name in ("not-enterprise", "restricted", "no-agreement", "low-balance")}
STATE_CREDENTIALS = dict(CREDENTIALS, **{
    SUB_ID: {"SecretKey": SUB_KEY, "Actions": ["DescribeProxies", "ModifyProxyConfiguration"],
             "ProxyIds": ["link-4ftf12sb", "link-doesnotx"]},
    NONE_ID: {"SecretKey": NONE_KEY, "Actions": []},
    REFUSED_ID: {"SecretKey": REFUSED_KEY, "AuthFailure": "CAM refused this key"},
}, **{sid: {"SecretKey": key, "Account": name} for name, (sid, key) in ACCOUNT_IDS.items()})


class StatesTest(SimTestCase):
    rate_limit = 0
    credentials = STATE_CREDENTIALS
    more_fixtures = (STATES,)

    def as_account(self, name, action, params):
        sid, key = ACCOUNT_IDS[name]
        return self.call(action, params, secret_id=sid, secret_key=key)

    def test_proxy_states(self):
        cases = {
            "link-migrat01": "FailedOperation.Migration",
            "link-adjust01": "FailedOperation",
            "link-isolat01": "ResourceUnavailable",
            "link-partnr01": "FailedOperation.NonStandardProxy",
            "link-noscale1": "FailedOperation.NotSupportScalar",
            "link-rsbound1": "FailedOperation.RealServerAlreadyBound",
            "link-nooffer1": "InternalError",
            "link-doesnotx": "ResourceNotFound",
            "lg-7xk2m4qa": "InvalidParameter",
        }
        for proxy, code in cases.items():
            with self.subTest(proxy=proxy):
                self.assertError(self.modify({"ProxyId": proxy, "Bandwidth": 50}), code)
        r = self.modify({"ProxyId": "link-rsbound1", "Bandwidth": 50})
        self.assertIn("link-rsbound1", r["Error"]["Message"])  # the fixture's own message
        self.assertError(self.modify({"InstanceId": "lg-7xk2m4qa", "Bandwidth": 50}),
                         "InvalidParameter")

    def test_states_are_checked_before_the_values(self):
        # 30 Mbps is not offered either: the proxy's state answers first.
        self.assertError(self.modify({"ProxyId": "link-migrat01", "Bandwidth": 30}),
                         "FailedOperation.Migration")

    def test_describe_shows_every_proxy_as_gaap_would(self):
        proxies = self.proxies()
        self.assertEqual(len(proxies), len(FIXTURE_IDS) + 6)
        self.assertEqual(proxies["link-migrat01"]["Status"], "MOVING")
        self.assertEqual(proxies["link-partnr01"]["ProxyType"], 103)
        for p in proxies.values():
            self.assertNotIn("Code", p)  # ProxyErrors stay out of ProxyInfo

    def test_account_states(self):
        for name, code in (("not-enterprise", "AuthFailure.NotEnterpriseAuthorization"),
                           ("restricted", "ResourceUnavailable.AccountViolation"),
                           ("no-agreement", "FailedOperation.UserNotConfirmProtocol")):
            with self.subTest(account=name):
                r = self.as_account(name, "ModifyProxyConfiguration",
                                    {"ProxyId": "link-4ftf12sb", "Bandwidth": 10})
                self.assertError(r, code)
                # the account answers before the resource is looked at
                r = self.as_account(name, "ModifyProxyConfiguration",
                                    {"ProxyId": "link-doesnotx", "Bandwidth": 10})
                self.assertError(r, code)
                # parameters are checked before the account
                r = self.as_account(name, "ModifyProxyConfiguration",
                                    {"ProxyId": "link-4ftf12sb", "Bandwidth": "ten"})
                self.assertError(r, "InvalidParameter")
                # reads are not refused
                self.assertOk(self.as_account(name, "DescribeProxies", {}))
                self.assertOk(self.as_account(name, "DescribeAccessRegionsByDestRegion",
                                              {"DestRegion": "Hongkong"}))
        self.assertEqual(self.proxies()["link-4ftf12sb"]["Bandwidth"], 20)

    def test_low_balance_refuses_only_a_costlier_configuration(self):
        def modify(params):
            return self.as_account("low-balance", "ModifyProxyConfiguration",
                                   dict(params, ProxyId="link-4ftf12sb"))

        self.assertError(modify({"Bandwidth": 50}), "FailedOperation.AccountBalanceInsufficient")
        self.assertError(modify({"Bandwidth": 10, "Concurrent": 10}),
                         "FailedOperation.AccountBalanceInsufficient")
        self.assertError(modify({"Bandwidth": 30}), "InvalidParameterValue")  # not offered
        self.assertOk(modify({"Bandwidth": 10}))  # lowering costs nothing
        self.assertOk(modify({"Concurrent": 2}))
        p = self.proxies()["link-4ftf12sb"]
        self.assertEqual((p["Bandwidth"], p["Concurrent"]), (10, 2))

    def test_sub_account_permissions(self):
        def call(action, params, sid=SUB_ID, key=SUB_KEY):
            return self.call(action, params, secret_id=sid, secret_key=key)

        self.assertOk(call("ModifyProxyConfiguration", {"ProxyId": "link-4ftf12sb",
                                                        "Bandwidth": 50}))
        self.assertOk(call("DescribeProxies", {}))
        r = call("DescribeAccessRegionsByDestRegion", {"DestRegion": "Hongkong"})
        self.assertError(r, "AuthFailure.UnauthorizedOperation")
        self.assertIn("DescribeAccessRegionsByDestRegion", r["Error"]["Message"])
        r = call("ModifyProxyConfiguration", {"ProxyId": "link-p9888rix", "Bandwidth": 20})
        self.assertError(r, "UnauthorizedOperation")
        self.assertIn("link-p9888rix", r["Error"]["Message"])
        # allowed but absent: the permission passes, the proxy is not found
        self.assertError(call("ModifyProxyConfiguration", {"ProxyId": "link-doesnotx",
                                                           "Bandwidth": 20}), "ResourceNotFound")
        # not allowed and absent: CAM's resource check answers first
        self.assertError(call("ModifyProxyConfiguration", {"ProxyId": "link-nothere1",
                                                           "Bandwidth": 20}),
                         "UnauthorizedOperation")
        # an empty Actions list allows nothing, and CAM answers before the parameters
        self.assertError(call("DescribeProxies", {"Limit": 500}, NONE_ID, NONE_KEY),
                         "AuthFailure.UnauthorizedOperation")
        self.assertEqual(self.proxies()["link-p9888rix"]["Bandwidth"], 10)

    def test_refused_key(self):
        r = self.call("DescribeProxies", {}, secret_id=REFUSED_ID, secret_key=REFUSED_KEY)
        self.assertError(r, "AuthFailure")
        self.assertEqual(r["Error"]["Message"], "CAM refused this key")
        # the signature is checked first: a wrong key is still a signature failure
        r = self.call("DescribeProxies", {}, secret_id=REFUSED_ID, secret_key=SUB_KEY)
        self.assertError(r, "AuthFailure.SignatureFailure")

    def test_each_answer_has_a_fresh_request_id(self):
        ids = {self.modify({"ProxyId": "link-migrat01", "Bandwidth": 50})["RequestId"]
               for _ in range(3)}
        self.assertEqual(len(ids), 3)


class FixtureAndCredentialFilesTest(unittest.TestCase):
    """What tcgw-sim accepts at start, and how it says what is wrong."""

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="tcgw-sim-")
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)
        self.n = 0

    def start(self, credentials=None, overlays=()):
        self.n += 1
        paths = []
        for i, doc in enumerate(overlays):
            path = self.dir / ("overlay-%d-%d.json" % (self.n, i))
            path.write_text(json.dumps(doc), encoding="utf-8")
            paths += ["--fixture", str(path)]
        sim = harness.Simulator()
        sim.start(self.dir / str(self.n), credentials or CREDENTIALS, certs=CERTS,
                  extra_args=paths)
        self.addCleanup(sim.stop)
        return sim

    def assertRefused(self, pattern, **kw):
        with self.assertRaisesRegex(RuntimeError, pattern):
            self.start(**kw)

    def test_overlays_add_proxies_regions_and_accounts(self):
        proxy = dict(json.loads(harness.default_fixture().read_text(encoding="utf-8"))
                     ["Proxies"][0], ProxyId="link-added01", Status="CLOSED")
        sim = self.start(
            credentials=dict(CREDENTIALS, AKIDsimTESTmine0000000000000EXAMPLE={
                "SecretKey": "k", "Account": "mine"}),
            overlays=[{"Proxies": [proxy]}, {"Accounts": {"mine": {"Violation": True}}}])
        r = sim.call("ModifyProxyConfiguration", {"ProxyId": "link-added01", "Bandwidth": 50},
                     SECRET_ID, SECRET_KEY).json()["Response"]
        self.assertEqual(r["Error"]["Code"], "ResourceUnavailable")
        r = sim.call("ModifyProxyConfiguration", {"ProxyId": "link-added01", "Bandwidth": 50},
                     "AKIDsimTESTmine0000000000000EXAMPLE", "k").json()["Response"]
        self.assertEqual(r["Error"]["Code"], "ResourceUnavailable.AccountViolation")
        r = sim.call("DescribeProxies", {"Limit": 100}, SECRET_ID, SECRET_KEY).json()["Response"]
        self.assertEqual(r["TotalCount"], len(FIXTURE_IDS) + 1)

    def test_bad_fixture_overlays_are_refused(self):
        cases = [
            ([{"Proxies": [{"ProxyId": "link-4ftf12sb"}]}], r"Proxies\[4\]"),
            ([{"Proxies": json.loads(harness.default_fixture().read_text(encoding="utf-8"))
               ["Proxies"][:1]}], r"Proxies\[4\]\.ProxyId repeats Proxies\[0\]"),
            ([{"Regions": {"Guangzhou": {}}}], "Regions.Guangzhou is already given"),
            ([{"Acounts": {}}], 'unknown key "Acounts"'),
            ([{"Accounts": {"a": {"Broke": True}}}], "Accounts.a.Broke"),
            ([{"Accounts": {"a": {"Violation": 1}}}], "Accounts.a.Violation"),
            ([{"ProxyErrors": {"link-nothere1": {"Code": "FailedOperation", "Message": "m"}}}],
             "names no proxy"),
            ([{"ProxyErrors": {"link-4ftf12sb": {"Code": "failed op", "Message": "m"}}}],
             "ProxyErrors.link-4ftf12sb must be"),
            ([{"ProxyErrors": {"link-4ftf12sb": {"Code": "FailedOperation"}}}],
             "ProxyErrors.link-4ftf12sb must be"),
            ([{"Proxies": {}}], '"Proxies" must be an array'),
        ]
        for overlays, pattern in cases:
            with self.subTest(overlays=overlays):
                self.assertRefused(pattern, overlays=overlays)

    def test_bad_credentials_are_refused(self):
        cases = [
            ({"AKIDx": {"SecretKey": "k", "Acount": "a"}}, 'unknown key "Acount"'),
            ({"AKIDx": {"Account": "default"}}, 'needs a non-empty "SecretKey"'),
            ({"AKIDx": {"SecretKey": "k", "Actions": "DescribeProxies"}}, "Actions and"),
            ({"AKIDx": {"SecretKey": "k", "ProxyIds": [""]}}, "Actions and"),
            ({"AKIDx": {"SecretKey": "k", "AuthFailure": ""}}, "AuthFailure must be"),
            ({"AKIDx": {"SecretKey": "k", "Account": "nobody"}}, 'account "nobody" is not'),
            ({"AKIDx": ""}, "non-empty SecretKey"),
            ({"AKIDx": 7}, "non-empty SecretKey"),
            ({"AKID/x": "k"}, "no '/'"),
        ]
        for creds, pattern in cases:
            with self.subTest(credentials=creds):
                self.assertRefused(pattern, credentials=creds)

    def test_both_credential_forms_in_one_file(self):
        sim = self.start(credentials={SECRET_ID: SECRET_KEY, OTHER_ID: {"SecretKey": OTHER_KEY}})
        for sid, key in ((SECRET_ID, SECRET_KEY), (OTHER_ID, OTHER_KEY)):
            r = sim.call("DescribeProxies", {}, sid, key).json()["Response"]
            self.assertNotIn("Error", r)


if __name__ == "__main__":
    unittest.main()
