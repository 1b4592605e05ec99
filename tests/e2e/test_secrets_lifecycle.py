"""End to end: secrets over a gateway's life. A credential rotated with `tcgw secrets put` and
SIGHUP under concurrent load (no call fails; new calls sign with the new key), and a leak scan:
after calls that succeed and calls that fail every way, no secret (the account's SecretKey, the
master key, a caller's token, an SDK key's SecretKey) appears in any output, in plain, hex or
base64.

Run: cd tests/e2e && TCGW_BIN=... TCGW_SIM_BIN=... python3 -m unittest -v test_secrets_lifecycle
"""
import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time

import auditlib
import gw
import harness
import test_admin

TEMP_ID = "AKIDtemporaryEXAMPLE0000000000000000"
TEMP_KEY = "temporarySecretKeyEXAMPLE0000000"
TEMP_TOKEN = "temporarySessionTokenCanary" + "x" * 40
NEW_ID = "AKIDrotatedNewEXAMPLE000000000000000"
NEW_KEY = "rotatedSecretKeyNEWexample000000"
SEED = json.loads(gw.SEED_BODY)


def forms(secret):
    """The ways a secret could leak: as is, hex (either case), base64 and base64url."""
    raw = secret if isinstance(secret, bytes) else secret.encode()
    out = {raw, raw.hex().encode(), raw.hex().upper().encode(), base64.b64encode(raw),
           base64.urlsafe_b64encode(raw).rstrip(b"=")}
    return {f for f in out if len(f) >= 8}


class Rotation(gw.GatewaysCase):

    def setUp(self):
        super().setUp()
        # The simulator knows the old and the new key, as Tencent does during a rotation.
        self.sim.stop()
        self.sim = harness.Simulator().start(
            os.path.join(self.dir, "sim2"),
            {gw.DEV_SECRET_ID: gw.DEV_SECRET_KEY, NEW_ID: NEW_KEY}, rate_limit=0)
        self.addCleanup(self.sim.stop)

    def test_rotation_under_load_fails_no_call(self):
        g = self.gateway(extra_config={"threads": 2})
        stop = threading.Event()
        failures, answered = [], [0]
        lock = threading.Lock()

        def load():
            while not stop.is_set():
                try:
                    status, answer = g.call("DescribeProxies", {"Limit": 1})
                    code = gw.error_code(answer)
                except Exception as e:  # noqa: BLE001 - any failure counts
                    code = repr(e)
                with lock:
                    answered[0] += 1
                    if code is not None:
                        failures.append(code)

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            gw.run_tcgw(["secrets", "put", "default", "--config", g.config_path],
                        stdin=("%s\n%s\n" % (NEW_ID, NEW_KEY)).encode())
            self.assertIn("result=loaded", g.reload())
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(failures, [])
        records = self.sim.records()
        self.assertGreater(len(records), 20)
        ids = [re.search(r"Credential=([^/]+)/", r["headers"]["authorization"]).group(1)
               for r in records]
        self.assertIn(gw.DEV_SECRET_ID, ids)
        self.assertEqual(ids[-1], NEW_ID)
        # Once a call was signed with the new key, none after it used the old one... per worker:
        # calls in flight at the swap may finish with the old one, so allow a few.
        first_new = ids.index(NEW_ID)
        self.assertLessEqual(ids[first_new:].count(gw.DEV_SECRET_ID), 8, ids)
        self.assertTrue(all(r["error_code"] is None for r in records))


class Leaks(gw.GatewaysCase):

    def test_no_secret_in_any_output(self):
        d = os.path.join(self.dir, "leaks")
        os.makedirs(d)
        g = gw.Gateway(d, self.sim.port, self.sim.ca_file, callers={},
                       unauthenticated_caller=None,
                       extra_config={"audit": auditlib.audit_config(d),
                                     "admin": {"listen_port": 0}},
                       policies={"allow-all": gw.ALLOW_ALL,
                                 "reader": {"version": "2.0", "statement": [
                                     {"effect": "allow", "action": "gaap:Describe*",
                                      "resource": "*"}]}})
        g.provision()
        # A temporary credential (its session token is a secret too) that a caller signs with.
        expiry = int(time.time()) + 3600
        gw.run_tcgw(["secrets", "put", "temporary", "--temporary", "--key", g.key_path,
                     "--store", g.store_path],
                    stdin=("%s\n%s\n%s\n%d\n" % (TEMP_ID, TEMP_KEY, TEMP_TOKEN,
                                                    expiry)).encode())
        g.start(provision=False)
        self.addCleanup(g.stop)
        out = gw.run_tcgw(["callers", "add", "temp-user", "--policy", "allow-all",
                           "--credential", "temporary", "--config", g.config_path]).stdout.decode()
        temp_user = gw.token_of(out)
        out = gw.run_tcgw(["callers", "add", "writer", "--policy", "allow-all", "--config",
                           g.config_path]).stdout.decode()
        token = gw.token_of(out)
        out = gw.run_tcgw(["callers", "add", "reader", "--sdk-key", "--policy", "reader",
                           "--config", g.config_path]).stdout.decode()
        sdk_id = re.search(r"AKIDtcgw[A-Za-z0-9]{28}", out).group(0)
        sdk_key = [w for w in re.split(r"[\s:=\"]+", out)
                   if re.fullmatch(r"[A-Za-z0-9]{32}", w)][0]
        g.reload()
        with open(g.key_path, "rb") as f:
            master = f.read()
        with open(os.path.join(d, "audit.key"), "rb") as f:
            audit_key = f.read()
        secrets = {"SecretKey": gw.DEV_SECRET_KEY, "master key": master, "token": token,
                   "SDK SecretKey": sdk_key, "temporary SecretKey": TEMP_KEY,
                   "session token": TEMP_TOKEN, "temp-user token": temp_user,
                   "audit signing key": audit_key}

        answers = []

        def call(headers, body=json.dumps(SEED).encode(), action="ModifyProxyConfiguration"):
            h = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
                 "X-TC-Action": action, "X-TC-Version": "2018-05-29"}
            h.update(headers)
            status, resp_headers, data = g.request("POST", "/", h, body)
            answers.append(data + json.dumps(resp_headers).encode())
            return json.loads(data) if data.startswith(b"{") else {}

        bearer = {"Authorization": "Bearer " + token}
        self.assertIsNone(gw.error_code(call(bearer)))                         # succeeds
        self.assertIsNotNone(gw.error_code(call({"Authorization": "Bearer " + token[::-1]})))
        self.assertIsNotNone(gw.error_code(call(bearer, body=b'{"ProxyId": 1')))  # malformed
        self.assertIsNotNone(gw.error_code(call(bearer, body=json.dumps(
            dict(SEED, Bogus="not-a-secret")).encode())))                       # unknown param
        signed = harness.signed_headers(sdk_id, sdk_key, "DescribeProxies", b"{}")
        self.assertIsNone(gw.error_code(call(signed, b"{}", "DescribeProxies")))
        wrong = harness.signed_headers(sdk_id, sdk_key[::-1], "DescribeProxies", b"{}")
        self.assertEqual(gw.error_code(call(wrong, b"{}", "DescribeProxies")),
                         "AuthFailure.SignatureFailure")
        denied = harness.signed_headers(sdk_id, sdk_key, "ModifyProxyConfiguration",
                                        json.dumps(SEED).encode())
        self.assertEqual(gw.error_code(call(denied)), "UnauthorizedOperation")
        # Signed with the temporary key: the simulator does not know it (its own refusal).
        self.assertIsNotNone(gw.error_code(call({"Authorization": "Bearer " + temp_user})))
        self.sim.stop()                                                         # upstream down
        self.assertIsNotNone(gw.error_code(call(bearer)))

        g.admin_port = test_admin.admin_port(g)
        outputs = {"answers": b"\n".join(answers), "log": g.read_log().encode(),
                   "/metrics": test_admin.admin_get(g, "/metrics")[2],
                   "/readyz": test_admin.admin_get(g, "/readyz")[2]}
        with open(os.path.join(d, "audit.log"), "rb") as f:
            outputs["audit log"] = f.read()
        self.assertIn(b'"caller":"temp-user"', outputs["audit log"])  # the scan reads records
        for name in ("tcgw.json", "callers.json"):
            with open(os.path.join(g.workdir, name), "rb") as f:
                outputs[name] = f.read()
        outputs["secrets list"] = gw.run_tcgw(["secrets", "list", "--config",
                                               g.config_path]).stdout
        outputs["callers list"] = gw.run_tcgw(["callers", "list", "--json", "--config",
                                               g.config_path]).stdout
        pid = g.proc.pid
        for name in ("cmdline", "environ"):
            with open("/proc/%d/%s" % (pid, name), "rb") as f:
                outputs["/proc/" + name] = f.read()
        hits = [(what, where) for what, secret in secrets.items() for f in forms(secret)
                for where, text in outputs.items() if f in text]
        self.assertEqual(hits, [])


class LockedMemory(gw.GatewaysCase):
    """require_locked_memory: a gateway that cannot lock key memory in RAM refuses to start
    (RLIMIT_MEMLOCK 0 and, for root, CAP_IPC_LOCK dropped with setpriv)."""

    def test_refused_without_lockable_memory(self):
        if shutil.which("setpriv") is None or shutil.which("prlimit") is None:
            self.skipTest("setpriv and prlimit (util-linux) are needed")
        with open(gw.tcgw_bin(), "rb") as f:
            if b"__asan_init" in f.read():
                self.skipTest("AddressSanitizer replaces mlock with a call that always succeeds")
        d = os.path.join(self.dir, "nolock")
        os.makedirs(d)
        g = gw.Gateway(d, self.sim.port, self.sim.ca_file,
                       extra_config={"require_locked_memory": True})
        g.provision()
        g.write_config()
        argv = ["prlimit", "--memlock=0:0", "setpriv", "--inh-caps=-ipc_lock",
                "--bounding-set=-ipc_lock", gw.tcgw_bin(), "serve", "--config", g.config_path]
        proc = subprocess.run(argv, capture_output=True, timeout=30)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(b"cannot be locked in RAM", proc.stderr)
        # The same without the requirement starts, and says once that keys may reach swap.
        g2 = gw.Gateway(os.path.join(self.dir, "nolock2"), self.sim.port, self.sim.ca_file)
        os.makedirs(g2.workdir)
        g2.provision()
        g2.write_config()
        argv[-1] = g2.config_path
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 15
            out = b""
            while time.time() < deadline and b"event=listening" not in out:
                out += p.stdout.read1(4096)
            self.assertIn(b"event=mlock result=failed", out)
            self.assertIn(b"event=listening", out)
        finally:
            p.terminate()
            p.wait(timeout=20)
