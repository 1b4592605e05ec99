"""End to end: callers and policies. Bearer tokens and gateway-issued SDK keys (with the official
Node SDK's GAAP client unchanged but for its endpoint), the shipped example policies, a caller's
binding to its credential, malformed identities, `tcgw policy check`, and reload under load.

Run: cd tests/e2e && TCGW_BIN=... TCGW_SIM_BIN=... python3 -m unittest -v test_access
"""
import json
import os
import re
import shutil
import subprocess
import threading
import time

import gw
import harness

SHIPPED_POLICIES = os.path.join(gw.repo_root(), "policies")
NODE_DIR = os.path.join(gw.repo_root(), "tests", "node")
GAAP_CLIENT_JS = os.path.join(NODE_DIR, "gaap_client.js")
SEED = {"ProxyId": "link-4ftf12sb", "Concurrent": "2", "Bandwidth": "10"}
MODIFY = "ModifyProxyConfiguration"
OTHER_ID = "AKIDotherAccountEXAMPLE0000000000000"
OTHER_KEY = "otherAccountSecretKeyExample0000"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def shipped(name):
    with open(os.path.join(SHIPPED_POLICIES, name + ".json")) as f:
        return f.read()


def field(line, name):
    m = re.search(r'\b%s=("[^"]*"|\S+)' % name, line)
    return m.group(1).strip('"') if m else None


def call_line(g, request_id):
    lines = [l for l in g.read_log().splitlines()
             if "event=call " in l and ("request_id=%s " % request_id) in l]
    assert len(lines) == 1, lines
    return lines[0]


def rid(answer):
    """The gateway's RequestId: in its own errors, and in X-Tcgw-Request-Id on every answer."""
    return answer.get("_gateway_request_id") or answer["Response"]["RequestId"]


class AccessCase(gw.GatewaysCase):
    """A gateway with no unauthenticated caller: every call must carry an identity."""

    def access_gateway(self, callers=None, policies=None, **kw):
        if policies is None:
            policies = {"capacity-bot": shipped("capacity-bot"), "auditor": shipped("auditor")}
        g = self.gateway(callers=callers or {}, policies=policies, unauthenticated_caller=None,
                         **kw)
        return g

    def add_caller(self, g, name, *args):
        proc = gw.run_tcgw(["callers", "add", name, "--config", g.config_path] + list(args))
        return proc.stdout.decode()

    def add_token_caller(self, g, name, *args):
        out = self.add_caller(g, name, *args)
        tokens = [w for w in re.split(r"\s+", out) if TOKEN_RE.match(w)]
        self.assertEqual(len(tokens), 1, "one token printed: %r" % out)
        return tokens[0]

    def add_sdk_caller(self, g, name, *args):
        out = self.add_caller(g, name, "--sdk-key", *args)
        secret_id = re.search(r"(AKIDtcgw[A-Za-z0-9]{28})", out).group(1)
        words = [w for w in re.split(r"[\s:=\"]+", out)
                 if re.fullmatch(r"[A-Za-z0-9]{32}", w) and w != secret_id]
        self.assertEqual(len(words), 1, "one SecretKey printed: %r" % out)
        return secret_id, words[0]

    def bearer(self, g, token, action, body):
        headers = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
                   "X-TC-Action": action, "X-TC-Version": "2018-05-29",
                   "Authorization": "Bearer " + token}
        status, resp_headers, data = g.request("POST", "/", headers, json.dumps(body).encode())
        answer = json.loads(data)
        answer["_gateway_request_id"] = resp_headers.get("X-Tcgw-Request-Id")
        return status, answer


class Tokens(AccessCase):

    def test_capacity_bot_and_auditor_under_the_shipped_policies(self):
        g = self.access_gateway()
        bot = self.add_token_caller(g, "capacity-bot", "--policy", "capacity-bot")
        auditor = self.add_token_caller(g, "auditor", "--policy", "auditor")
        self.assertIn("reload", g.reload())

        status, ans = self.bearer(g, bot, MODIFY, SEED)
        self.assertEqual((status, gw.error_code(ans)), (200, None), ans)
        line = call_line(g, rid(ans))
        self.assertEqual(field(line, "caller"), "capacity-bot")
        self.assertEqual(field(line, "identity"), "token")
        self.assertEqual(field(line, "decision"), "allow")
        self.assertTrue(field(line, "statement").startswith("capacity-bot.json#"), line)
        self.assertEqual(field(line, "credential"), "default")
        self.assertEqual(len(self.sim.records()), 1)

        refused = [
            (dict(SEED, Bandwidth="200"), "Bandwidth"),
            (dict(SEED, Concurrent="11"), "Concurrent"),
            (dict(SEED, ProxyId="lnk-4ftf12sb"), "ProxyId"),
            (dict(SEED, BillingType=1), "BillingType"),
        ]
        for body, param in refused:
            status, ans = self.bearer(g, bot, MODIFY, body)
            self.assertEqual(gw.error_code(ans), "UnauthorizedOperation", ans)
            message = ans["Response"]["Error"]["Message"]
            self.assertIn(param, message)
            self.assertNotIn("auditor", message)  # never another caller's policies
            line = call_line(g, rid(ans))
            self.assertEqual(field(line, "decision"), "deny")
            self.assertIn(param, field(line, "reason") or line)
        status, ans = self.bearer(g, bot, "DescribeProxies", {})
        self.assertIsNone(gw.error_code(ans), ans)

        status, ans = self.bearer(g, auditor, "DescribeProxies", {})
        self.assertIsNone(gw.error_code(ans), ans)
        status, ans = self.bearer(g, auditor, MODIFY, SEED)
        self.assertEqual(gw.error_code(ans), "UnauthorizedOperation", ans)
        self.assertIn("ModifyProxyConfiguration", ans["Response"]["Error"]["Message"])
        # Only the two allowed writes and reads reached Tencent Cloud.
        self.assertEqual(len([r for r in self.sim.records()
                              if r.get("action") == MODIFY]), 1, self.sim.records())

    def test_no_identity_and_malformed_authorization(self):
        g = self.access_gateway()
        token = self.add_token_caller(g, "capacity-bot", "--policy", "capacity-bot")
        g.reload()
        status, ans = g.call("DescribeProxies", {})
        self.assertEqual(gw.error_code(ans), "AuthFailure.InvalidAuthorization")
        message = ans["Response"]["Error"]["Message"]
        self.assertIn("Bearer", message)
        self.assertIn("SDK", message)
        bad = ["Bearer", "Bearer ", "Bearer " + token[:-1], "Bearer " + token + "A",
               "Bearer " + token + " extra", "bearer" + token, "Basic dXNlcjpwYXNz",
               "Bearer " + "A" * 43, "TC3-HMAC-SHA256 nonsense", "x" * 5000,
               "Bearer " + token[:-1] + "\u00e9"]
        for value in bad:
            status, ans = g.call("DescribeProxies", {},
                                 extra_headers={"Authorization": value})
            self.assertEqual(status, 200)
            self.assertTrue(gw.error_code(ans).startswith("AuthFailure."), (value, ans))
            self.assertNotIn(token, json.dumps(ans))
        # Two Authorization headers: which one is the caller? Refused as framing, 400, closed.
        status, _, data = g.request("POST", "/", {
            "Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
            "X-TC-Action": "DescribeProxies", "X-TC-Version": "2018-05-29",
            "Authorization": "Bearer " + token, "authorization": "Bearer " + "B" * 43}, b"{}")
        self.assertEqual((status, gw.error_code(json.loads(data))), (400, "InvalidRequest"))
        self.assertEqual(self.sim.records(), [])
        # Still serving, and the token is not in the log.
        status, ans = self.bearer(g, token, "DescribeProxies", {})
        self.assertIsNone(gw.error_code(ans), ans)
        self.assertNotIn(token, g.read_log())

    def test_listener_methods(self):
        g = self.access_gateway(extra_config={"accept": ["sdk_key"]})
        token = self.add_token_caller(g, "capacity-bot", "--policy", "capacity-bot")
        g.reload()
        status, ans = self.bearer(g, token, "DescribeProxies", {})
        self.assertEqual(gw.error_code(ans), "AuthFailure.InvalidAuthorization", ans)
        self.assertIn("SDK", ans["Response"]["Error"]["Message"])
        g2 = self.access_gateway(extra_config={"accept": ["token"]})
        secret_id, secret_key = self.add_sdk_caller(g2, "billing", "--policy", "auditor")
        g2.reload()
        headers = harness.signed_headers(secret_id, secret_key, "DescribeProxies", b"{}")
        status, _, data = g2.request("POST", "/", dict(headers, **{"X-TC-Version": "2018-05-29"}),
                                     b"{}")
        ans = json.loads(data)
        self.assertEqual(gw.error_code(ans), "AuthFailure.InvalidAuthorization", ans)
        self.assertIn("Bearer", ans["Response"]["Error"]["Message"])
        self.assertEqual(self.sim.records(), [])

    def test_each_caller_signs_with_its_own_credential(self):
        g = self.access_gateway(policies={"allow-all": gw.ALLOW_ALL})
        gw.run_tcgw(["secrets", "put", "other", "--config", g.config_path],
                    stdin=("%s\n%s\n" % (OTHER_ID, OTHER_KEY)).encode())
        a = self.add_token_caller(g, "team-a", "--policy", "allow-all")
        b = self.add_token_caller(g, "team-b", "--policy", "allow-all", "--credential", "other")
        g.reload()
        self.bearer(g, a, "DescribeProxies", {})
        self.bearer(g, b, "DescribeProxies", {})
        ids = [r["headers"].get("authorization", r["headers"].get("Authorization", ""))
               for r in self.sim.records()]
        self.assertEqual(len(ids), 2, self.sim.records())
        self.assertIn("Credential=%s/" % gw.DEV_SECRET_ID, ids[0])
        self.assertIn("Credential=%s/" % OTHER_ID, ids[1])

    def test_policy_check_explains(self):
        g = self.access_gateway()
        self.add_token_caller(g, "capacity-bot", "--policy", "capacity-bot")
        proc = gw.run_tcgw(["policy", "check", "--config", g.config_path, "--caller",
                            "capacity-bot", "--action", "gaap:" + MODIFY, "--params",
                            json.dumps(dict(SEED, Bandwidth="500"))], check=False)
        out = (proc.stdout + proc.stderr).decode()
        self.assertIn("deny", out.lower())
        self.assertIn("Bandwidth", out)
        proc = gw.run_tcgw(["policy", "check", "--config", g.config_path, "--caller",
                            "capacity-bot", "--action", "gaap:" + MODIFY, "--params",
                            json.dumps(SEED)], check=False)
        self.assertIn("allow", (proc.stdout + proc.stderr).decode().lower())

    def test_reload_refuses_a_broken_file_and_keeps_the_set(self):
        g = self.access_gateway()
        token = self.add_token_caller(g, "capacity-bot", "--policy", "capacity-bot")
        g.reload()
        g.policies = {"capacity-bot": '{"version": "2.0", "statement": [{"effect": "allow",'
                      ' "effect": "deny", "action": "*", "resource": "*"}]}',
                      "auditor": shipped("auditor")}
        g.write_access()
        line = g.reload()
        self.assertIn("result=refused", line)
        self.assertIn("capacity-bot.json:", line)
        status, ans = self.bearer(g, token, MODIFY, SEED)
        self.assertIsNone(gw.error_code(ans), ans)
        status, ans = self.bearer(g, token, MODIFY, dict(SEED, Bandwidth="200"))
        self.assertEqual(gw.error_code(ans), "UnauthorizedOperation")


class Reload(AccessCase):

    def test_reload_under_load_judges_every_call_by_one_set(self):
        """Four threads call without pause while the auditor's policy is swapped back and forth
        between "Describe only" and "Describe and Modify": no call fails, every write is judged by
        one set or the other, and calls after a reload line see the new set."""
        allow_modify = json.dumps({"version": "2.0", "statement": [
            {"sid": "reads", "effect": "allow", "action": "gaap:Describe*", "resource": "*"},
            {"sid": "writes", "effect": "allow", "action": "gaap:" + MODIFY, "resource": "*"}]})
        g = self.access_gateway(extra_config={"threads": 2})
        token = self.add_token_caller(g, "auditor", "--policy", "auditor")
        g.reload()
        stop = threading.Event()
        problems, counts = [], {"read": 0, "allowed": 0, "denied": 0}
        lock = threading.Lock()

        def load():
            while not stop.is_set():
                for action, body in (("DescribeProxies", {}), (MODIFY, SEED)):
                    try:
                        status, ans = self.bearer(g, token, action, body)
                    except Exception as e:  # noqa: BLE001 - any failure is a problem
                        with lock:
                            problems.append(repr(e))
                        continue
                    code = gw.error_code(ans)
                    with lock:
                        if action == "DescribeProxies":
                            if code is not None:
                                problems.append(ans)
                            counts["read"] += 1
                        elif code is None:
                            counts["allowed"] += 1
                        elif code == "UnauthorizedOperation":
                            counts["denied"] += 1
                        else:
                            problems.append(ans)

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for i in range(6):
                time.sleep(0.3)
                g.policies = {"auditor": allow_modify if i % 2 == 0 else shipped("auditor"),
                              "capacity-bot": shipped("capacity-bot")}
                g.write_access()
                self.assertIn("result=loaded", g.reload())
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(problems, [])
        self.assertGreater(counts["read"], 20, counts)
        self.assertGreater(counts["allowed"], 0, counts)
        self.assertGreater(counts["denied"], 0, counts)
        # The last set allows writes (i = 5 is odd: the shipped auditor, Describe only).
        status, ans = self.bearer(g, token, MODIFY, SEED)
        self.assertEqual(gw.error_code(ans), "UnauthorizedOperation")
        # Every decision in the log names a statement of the set it was made by.
        for line in g.read_log().splitlines():
            if "event=call " in line and field(line, "decision") == "allow":
                self.assertRegex(field(line, "statement"), r"^auditor\.json#")
        # Allowed writes reached the simulator; refused ones did not.
        writes = [r for r in self.sim.records() if r.get("action") == MODIFY]
        self.assertEqual(len(writes), counts["allowed"])


class SdkKeys(AccessCase):

    def setUp(self):
        super().setUp()
        if shutil.which("node") is None or not os.path.isdir(
                os.path.join(NODE_DIR, "node_modules", "tencentcloud-sdk-nodejs")):
            raise AssertionError("the official Node SDK (tencentcloud-sdk-nodejs) is not "
                                 "installed: cd tests/node && npm install")

    def gaap_client(self, g, secret_id, secret_key, calls):
        payload = {"endpoint": "127.0.0.1:%d/gaap" % g.port,
                   "credential": {"secretId": secret_id, "secretKey": secret_key},
                   "calls": calls}
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        proc = subprocess.run(["node", GAAP_CLIENT_JS], input=json.dumps(payload).encode(),
                              capture_output=True, timeout=60, env=env, cwd=NODE_DIR)
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        return json.loads(proc.stdout)

    def test_official_gaap_client_with_a_gateway_issued_key(self):
        g = self.access_gateway()
        secret_id, secret_key = self.add_sdk_caller(g, "capacity-bot", "--policy",
                                                    "capacity-bot")
        g.reload()
        results = self.gaap_client(g, secret_id, secret_key, [
            {"method": "DescribeProxies", "params": {}},
            {"method": MODIFY, "params": SEED},
            {"method": MODIFY, "params": dict(SEED, Bandwidth="300")},
        ])
        self.assertTrue(results[0]["ok"], results[0])
        self.assertIn("ProxySet", results[0]["response"])
        self.assertTrue(results[1]["ok"], results[1])
        self.assertFalse(results[2]["ok"])
        self.assertEqual(results[2]["error"]["code"], "UnauthorizedOperation")
        # The caller's key never left the gateway; the simulator saw the real credential.
        for r in self.sim.records():
            auth = r["headers"].get("authorization", r["headers"].get("Authorization", ""))
            self.assertIn(gw.DEV_SECRET_ID, auth)
            self.assertNotIn(secret_id, json.dumps(r))
        self.assertNotIn(secret_key, g.read_log())

        wrong = self.gaap_client(g, secret_id, secret_key[:-1] + ("A" if secret_key[-1] != "A"
                                                                   else "B"),
                                 [{"method": "DescribeProxies", "params": {}}])
        self.assertEqual(wrong[0]["error"]["code"], "AuthFailure.SignatureFailure", wrong)
        unknown = self.gaap_client(g, "AKIDtcgw" + "x" * 28, secret_key,
                                   [{"method": "DescribeProxies", "params": {}}])
        self.assertEqual(unknown[0]["error"]["code"], "AuthFailure.SecretIdNotFound", unknown)

    def test_expired_and_replayed_signatures(self):
        g = self.access_gateway()
        secret_id, secret_key = self.add_sdk_caller(g, "auditor", "--policy", "auditor")
        g.reload()
        body = b"{}"
        old = harness.signed_headers(secret_id, secret_key, "DescribeProxies", body,
                                     timestamp=int(time.time()) - 301)
        status, _, data = g.request("POST", "/", dict(old, **{"X-TC-Version": "2018-05-29"}),
                                    body)
        self.assertEqual(gw.error_code(json.loads(data)), "AuthFailure.SignatureExpire")
        fresh = dict(harness.signed_headers(secret_id, secret_key, "DescribeProxies", body),
                     **{"X-TC-Version": "2018-05-29"})
        status, _, data = g.request("POST", "/", fresh, body)
        self.assertIsNone(gw.error_code(json.loads(data)), data)
        status, _, data = g.request("POST", "/", fresh, body)
        ans = json.loads(data)
        self.assertTrue(gw.error_code(ans).startswith("AuthFailure."), ans)
        self.assertEqual(len(self.sim.records()), 1)
