"""End to end: temporary credentials and roles through STS.

A role with a short DurationSeconds under continuous load: no call fails across several
refreshes, the simulator sees the temporary SecretIds rotate, each call with its X-TC-Token. With
STS refusing (the simulator's /_sim/sts/refuse), the gateway keeps the current keys until they
expire, logs it, then refuses calls before sending them (InternalError.CredentialExpired). A static
temporary credential signs with its token until its expiry and is refused after, nothing sent.

Run: cd tests/e2e && TCGW_BIN=... TCGW_SIM_BIN=... python3 -m unittest -v test_sts
"""
import json
import os
import ssl
import threading
import time
import urllib.request

import gw
import test_admin

STS_HOST = "sts.tencentcloudapi.com"
DURATION = 12  # seconds: refreshed at 2/3, about every 8 s


def sim_control(sim, path):
    ctx = ssl.create_default_context(cafile=sim.ca_file)
    ctx.check_hostname = False
    with urllib.request.urlopen("https://127.0.0.1:%d%s" % (sim.port, path), context=ctx,
                                timeout=5) as r:
        assert r.read() == b"ok"


class Sts(gw.GatewaysCase):

    def role_gateway(self, duration=DURATION):
        d = os.path.join(self.dir, "gw%d" % next(self.names))
        os.makedirs(d)
        connect_to = ["%s:443:127.0.0.1:%d" % (h, self.sim.port)
                      for h in gw.UPSTREAM_HOSTS + (STS_HOST,)]
        g = gw.Gateway(d, self.sim.port, self.sim.ca_file, connect_to=connect_to,
                       extra_config={"admin": {"listen_port": 0}},
                       callers={"local": {"credential": "role", "policies": ["allow-all"]}})
        g.provision()  # "default": the long-lived key, used only for AssumeRole
        gw.run_tcgw(["secrets", "put-role", "role", "--source", "default", "--role-arn",
                     "qcs::cam::uin/100000000001:roleName/tcgw-test", "--session-name",
                     "tcgw-e2e", "--duration", str(duration), "--key", g.key_path, "--store",
                     g.store_path])
        g.start(provision=False)
        self.addCleanup(g.stop)
        return g

    def wait_for(self, pred, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            time.sleep(0.1)
        self.fail("timed out waiting for " + what)

    def gaap_records(self):
        return [r for r in self.sim.records()
                if r.get("headers", {}).get("host", "").startswith("gaap.")]

    def sts_records(self):
        return [r for r in self.sim.records()
                if r.get("headers", {}).get("host", "").startswith("sts.")]

    @staticmethod
    def secret_id(record):
        auth = record["headers"]["authorization"]
        return auth.split("Credential=", 1)[1].split("/", 1)[0]

    def test_role_refreshes_under_load_without_a_failed_call(self):
        g = self.role_gateway()
        self.wait_for(lambda: "event=sts_refresh role=role result=ok" in g.read_log(), 10,
                      "the first AssumeRole")
        failures, count = [], [0]
        stop = threading.Event()

        def load():
            while not stop.is_set():
                status, answer = g.call("DescribeProxies", {"Limit": 1})
                count[0] += 1
                if status != 200 or gw.error_code(answer) is not None:
                    failures.append(answer)
                time.sleep(0.02)

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            time.sleep(DURATION * 2 + 4)  # at least three refreshes
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(failures, [], "calls failed during refreshes")
        self.assertGreater(count[0], 100)
        records = self.gaap_records()
        ids = [self.secret_id(r) for r in records]
        self.assertTrue(all(i.startswith("AKIDtmp") for i in ids), set(ids))
        self.assertGreaterEqual(len(set(ids)), 3, "temporary SecretIds did not rotate")
        for r in records:
            self.assertIn("x-tc-token", r["headers"])
            self.assertNotIn("x-tc-token", r["headers"]["authorization"].lower().split(
                "signedheaders=", 1)[1].split(",", 1)[0])
        # The AssumeRole calls: signed with the long-lived key, service sts, version 2018-08-13.
        sts = self.sts_records()
        self.assertGreaterEqual(len(sts), 3)
        for r in sts:
            self.assertEqual(self.secret_id(r), gw.DEV_SECRET_ID)
            self.assertIn("/sts/tc3_request", r["headers"]["authorization"])
            self.assertEqual(r["headers"]["x-tc-version"], "2018-08-13")
            self.assertEqual(r["headers"]["x-tc-action"], "AssumeRole")
            self.assertIsNone(r["error_code"], r)
        log = g.read_log()
        self.assertGreaterEqual(log.count("event=sts_refresh role=role result=ok"), 3)

    def test_sts_down_keeps_keys_until_expiry_then_refuses(self):
        g = self.role_gateway()
        self.wait_for(lambda: "event=sts_refresh role=role result=ok" in g.read_log(), 10,
                      "the first AssumeRole")
        sim_control(self.sim, "/_sim/sts/refuse")
        started = time.time()
        last_ok = started
        refused = None
        while time.time() - started < DURATION + 10:
            status, answer = g.call("DescribeProxies", {"Limit": 1})
            code = gw.error_code(answer)
            if code is None:
                last_ok = time.time()
            else:
                refused = answer
                break
            time.sleep(0.1)
        self.assertIsNotNone(refused, "calls never failed although the keys expired")
        # The admin listener says why the gateway is not ready.
        g.admin_port = test_admin.admin_port(g)
        status, _, body = test_admin.admin_get(g, "/readyz")
        ready = json.loads(body)
        self.assertEqual(status, 503, ready)
        self.assertFalse(ready["checks"]["roles"]["ok"], ready)
        self.assertEqual(gw.error_code(refused), "InternalError.CredentialExpired", refused)
        self.assertGreater(last_ok - started, DURATION / 3 - 1,
                           "the current keys were not used while STS was down")
        log = g.read_log()
        self.assertIn("event=sts_refresh role=role result=failed", log)
        self.assertIn("current keys used until they expire", log)
        # Nothing was sent with the expired keys: every GAAP record was answered without error.
        for r in self.gaap_records():
            self.assertIsNone(r["error_code"], r)
        # STS back: the refresher assumes the role again and calls pass.
        sim_control(self.sim, "/_sim/sts/accept")
        self.wait_for(lambda: gw.error_code(g.call("DescribeProxies", {"Limit": 1})[1]) is None,
                      15, "calls to pass once STS answers again")
        self.assertEqual(test_admin.admin_get(g, "/readyz")[0], 200)

    def test_static_temporary_credential_expires(self):
        # A temporary key issued by the simulator's STS, stored as a static temporary credential.
        lifetime = 6
        body = json.dumps({"RoleArn": "qcs::cam::uin/1:roleName/x", "RoleSessionName": "op",
                           "DurationSeconds": lifetime}).encode()
        headers = self.sim_sts_headers(body)
        import harness
        answer = json.loads(harness.https_post(self.sim.port, STS_HOST, headers, body,
                                               self.sim.ca_file).body)
        creds = answer["Response"]["Credentials"]
        expires = answer["Response"]["ExpiredTime"]
        d = os.path.join(self.dir, "gwt")
        os.makedirs(d)
        g = gw.Gateway(d, self.sim.port, self.sim.ca_file,
                       callers={"local": {"credential": "tmp", "policies": ["allow-all"]}})
        g.provision()
        stdin = ("%s\n%s\n%s\n%s\n" % (creds["TmpSecretId"], creds["TmpSecretKey"],
                                       creds["Token"], time.strftime(
                                           "%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)))).encode()
        gw.run_tcgw(["secrets", "put", "tmp", "--temporary", "--key", g.key_path, "--store",
                     g.store_path], stdin=stdin)
        listing = gw.run_tcgw(["secrets", "list", "--json", "--key", g.key_path, "--store",
                               g.store_path]).stdout
        entry = [e for e in json.loads(listing) if e["name"] == "tmp"][0]
        self.assertEqual(entry["type"], "temporary")
        self.assertEqual(entry["expires"], expires)
        self.assertNotIn(creds["Token"].encode(), listing)
        g.start(provision=False)
        self.addCleanup(g.stop)
        status, answer = g.call("DescribeProxies", {"Limit": 1})
        self.assertIsNone(gw.error_code(answer), answer)
        rec = self.gaap_records()[-1]
        self.assertEqual(rec["headers"]["x-tc-token"], creds["Token"])
        sent = len(self.gaap_records())
        time.sleep(max(0, expires - time.time()) + 0.5)
        status, answer = g.call("DescribeProxies", {"Limit": 1})
        self.assertEqual(gw.error_code(answer), "InternalError.CredentialExpired", answer)
        self.assertEqual(len(self.gaap_records()), sent, "an expired credential's call was sent")
        self.assertNotIn(creds["TmpSecretKey"], g.read_log())
        self.assertNotIn(creds["Token"], g.read_log())

    def sim_sts_headers(self, body):
        import harness
        ts = int(time.time())
        auth = harness.tc3_sign(gw.DEV_SECRET_ID, gw.DEV_SECRET_KEY, STS_HOST, "sts", ts,
                                "application/json", body)
        return {"Content-Type": "application/json", "X-TC-Action": "AssumeRole",
                "X-TC-Version": "2018-08-13", "X-TC-Timestamp": str(ts), "Authorization": auth}

    def test_sim_refuses_temporary_keys_without_their_token(self):
        import harness
        body = json.dumps({"RoleArn": "qcs::cam::uin/1:roleName/x", "RoleSessionName": "op",
                           "DurationSeconds": 60}).encode()
        answer = json.loads(harness.https_post(self.sim.port, STS_HOST, self.sim_sts_headers(body),
                                               body, self.sim.ca_file).body)
        c = answer["Response"]["Credentials"]
        self.assertTrue(answer["Response"]["Expiration"].endswith("Z"))
        gbody = b'{"Limit": 1}'
        for token, code in ((None, "AuthFailure.TokenFailure"), ("x" * 96, "AuthFailure.TokenFailure"),
                            (c["Token"], None)):
            h = harness.signed_headers(c["TmpSecretId"], c["TmpSecretKey"], "DescribeProxies",
                                       gbody)
            if token is not None:
                h["X-TC-Token"] = token
            resp = harness.https_post(self.sim.port, harness.GAAP_HOST, h, gbody,
                                      self.sim.ca_file)
            self.assertEqual(gw.error_code(json.loads(resp.body)), code, resp.body)


if __name__ == "__main__":
    import unittest
    unittest.main()
