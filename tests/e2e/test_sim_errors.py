"""Every error code ModifyProxyConfiguration's API page lists, made by a fixture state of the
simulator (tests/sim/states.json over tests/sim/fixture.json, keys from
tests/sim/sandbox-credentials.json), reaches a caller through a real gateway unchanged: HTTP 200,
the exact Code, and the simulator's own fresh RequestId. The official Node SDK reads each one as
TencentCloudSDKHttpException with that code.

Each credential of the sandbox file is the default credential of its own gateway, so plain calls
(caller "local", allowed everything) are signed with it.

Two codes cannot come from the simulator with the gateway as shipped, and the tests say how they
get there: UnknownParameter (the gateway checks parameters against its API description first and
answers itself) goes through a gateway whose description has one parameter the service lacks, as
when a description is newer than the service; InvalidParameter is the simulator's answer to a
ProxyId that is not a proxy ID, which the gateway's description cannot tell.

Run: cd tests/e2e && TCGW_BIN=... TCGW_SIM_BIN=... python3 -m unittest -v test_sim_errors
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import gw
import harness

SIM_DIR = harness.source_dir() / "tests" / "sim"
STATES = SIM_DIR / "states.json"
SANDBOX_CREDENTIALS = SIM_DIR / "sandbox-credentials.json"
NODE_DIR = os.path.join(gw.repo_root(), "tests", "node")
SDK_CLIENT_JS = os.path.join(NODE_DIR, "sdk_client.js")
UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"

ROOT = "AKIDsandboxROOTEXAMPLE000000000000000EXAMPLE"
SUB = "AKIDsandboxSUBEXAMPLE0000000000000000EXAMPLE"
REFUSED = "AKIDsandboxREFUSEDEXAMPLE00000000000EXAMPLE"
NOT_ENTERPRISE = "AKIDsandboxNOTENTEXAMPLE00000000000EXAMPLE"
RESTRICTED = "AKIDsandboxRESTRICTEDEXAMPLE0000000EXAMPLE"
NO_AGREEMENT = "AKIDsandboxNOAGREEEXAMPLE000000000000EXAMPLE"
LOW_BALANCE = "AKIDsandboxLOWBALANCEEXAMPLE0000000EXAMPLE"
# The root key, through a gateway whose description knows one parameter more than the service.
ROOT_NEWER_SPEC = "root-newer-spec"
EXTRA_PARAMETER = "Comment"

MODIFY = "ModifyProxyConfiguration"

# code: (credential, action, params, setup calls made first with the same credential)
CASES = {
    "AuthFailure": (REFUSED, MODIFY, {"ProxyId": "link-4ftf12sb", "Bandwidth": 50}, []),
    "AuthFailure.NotEnterpriseAuthorization": (
        NOT_ENTERPRISE, MODIFY, {"ProxyId": "link-4ftf12sb", "Bandwidth": 50}, []),
    "AuthFailure.UnauthorizedOperation": (
        SUB, "DescribeAccessRegionsByDestRegion", {"DestRegion": "Hongkong"}, []),
    "FailedOperation": (ROOT, MODIFY, {"ProxyId": "link-adjust01", "Bandwidth": 50}, []),
    "FailedOperation.AccountBalanceInsufficient": (
        LOW_BALANCE, MODIFY, {"ProxyId": "link-4ftf12sb", "Bandwidth": 200}, []),
    "FailedOperation.DuplicatedRequest": (
        ROOT, MODIFY, {"ProxyId": "link-cq2sh7a1", "Bandwidth": 500, "ClientToken": "tok-dup"},
        [{"ProxyId": "link-cq2sh7a1", "Bandwidth": 200, "ClientToken": "tok-dup"}]),
    "FailedOperation.Migration": (ROOT, MODIFY, {"ProxyId": "link-migrat01", "Bandwidth": 50}, []),
    "FailedOperation.NonStandardProxy": (
        ROOT, MODIFY, {"ProxyId": "link-partnr01", "Bandwidth": 50}, []),
    "FailedOperation.NotSupportScalar": (
        ROOT, MODIFY, {"ProxyId": "link-noscale1", "Bandwidth": 100}, []),
    "FailedOperation.RealServerAlreadyBound": (
        ROOT, MODIFY, {"ProxyId": "link-rsbound1", "Bandwidth": 50}, []),
    "FailedOperation.UserNotConfirmProtocol": (
        NO_AGREEMENT, MODIFY, {"ProxyId": "link-4ftf12sb", "Bandwidth": 50}, []),
    "InternalError": (ROOT, MODIFY, {"ProxyId": "link-nooffer1", "Bandwidth": 50}, []),
    "InvalidParameter": (ROOT, MODIFY, {"ProxyId": "lg-7xk2m4qa", "Bandwidth": 50}, []),
    "InvalidParameterValue": (ROOT, MODIFY, {"ProxyId": "link-4ftf12sb", "Bandwidth": 30}, []),
    "MissingParameter": (ROOT, "DescribeAccessRegionsByDestRegion", {"DestRegion": ""}, []),
    "ResourceNotFound": (ROOT, MODIFY, {"ProxyId": "link-doesnotx", "Bandwidth": 50}, []),
    "ResourceUnavailable": (ROOT, MODIFY, {"ProxyId": "link-isolat01", "Bandwidth": 50}, []),
    "ResourceUnavailable.AccountViolation": (
        RESTRICTED, MODIFY, {"ProxyId": "link-4ftf12sb", "Bandwidth": 50}, []),
    "UnauthorizedOperation": (SUB, MODIFY, {"ProxyId": "link-p9888rix", "Bandwidth": 20}, []),
    "UnknownParameter": (
        ROOT_NEWER_SPEC, MODIFY,
        {"ProxyId": "link-4ftf12sb", "Bandwidth": 50, EXTRA_PARAMETER: "resize"}, []),
}


def page_codes():
    """The codes in section 6 of Tencent's ModifyProxyConfiguration page, or None without it."""
    shared = harness.shared_dir()
    page = shared / "reference" / "ModifyProxyConfiguration.txt" if shared else None
    if page is None or not page.is_file():
        return None
    text = page.read_text(encoding="utf-8")
    section = text[text.index("6. Error Code"):]
    return set(re.findall(r"^([A-Z][A-Za-z]*(?:\.[A-Za-z]+)*) \S", section, re.M)) - {"Error",
                                                                                    "The"}


def newer_spec_dir(workdir):
    """A copy of the shipped API description where ModifyProxyConfiguration takes one parameter
    more than GAAP (and the simulator) knows."""
    dest = os.path.join(workdir, "specs")
    shutil.copytree(os.path.join(gw.repo_root(), "specs"), dest)
    path = os.path.join(dest, "gaap", "v20180529", "api.json")
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    members = spec["objects"][spec["actions"][MODIFY]["input"]]["members"]
    members.append({"name": EXTRA_PARAMETER, "type": "string", "member": "string",
                    "required": False, "document": "A parameter the service does not know."})
    with open(path, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    return dest


def node_env():
    env = dict(os.environ)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY", "no_proxy", "NO_PROXY"):
        env.pop(name, None)
    return env


class ErrorCodesCase(unittest.TestCase):
    """One simulator with the sandbox states, and a gateway per credential, for the class."""

    @classmethod
    def setUpClass(cls):
        tmp = tempfile.TemporaryDirectory(prefix="tcgw-simerr-")
        cls.addClassCleanup(tmp.cleanup)
        cls.dir = tmp.name
        with open(SANDBOX_CREDENTIALS, encoding="utf-8") as f:
            cls.credentials = json.load(f)
        cls.sim = harness.Simulator().start(os.path.join(cls.dir, "sim"), cls.credentials,
                                            rate_limit=0, extra_args=("--fixture", str(STATES)))
        cls.addClassCleanup(cls.sim.stop)
        cls.gateways = {}

    @classmethod
    def gateway(cls, credential):
        """The gateway whose default credential is credential (started on first use)."""
        if credential not in cls.gateways:
            workdir = os.path.join(cls.dir, "gw-%d" % len(cls.gateways))
            os.makedirs(workdir)
            kw = {}
            secret_id = credential
            if credential == ROOT_NEWER_SPEC:
                kw["spec_dir"] = newer_spec_dir(workdir)
                secret_id = ROOT
            entry = cls.credentials[secret_id]
            key = entry if isinstance(entry, str) else entry["SecretKey"]
            g = gw.Gateway(workdir, cls.sim.port, cls.sim.ca_file, secret_id=secret_id,
                           secret_key=key, **kw)
            g.start()
            cls.addClassCleanup(g.stop)
            cls.gateways[credential] = g
        return cls.gateways[credential]

    def record(self, request_id):
        found = [r for r in self.sim.records() if r["request_id"] == request_id]
        self.assertEqual(len(found), 1, "the simulator answered %s once" % request_id)
        return found[0]


class TestEveryCodeThroughTheGateway(ErrorCodesCase):
    """One test per code (made from CASES below)."""

    def test_cases_cover_the_page(self):
        codes = page_codes()
        if codes is None:
            self.skipTest("TCGW_SHARED_DIR/reference/ModifyProxyConfiguration.txt not available")
        self.assertEqual(len(codes), 20, codes)
        self.assertEqual(set(CASES), codes)

    def check_code(self, code):
        credential, action, params, setup = CASES[code]
        g = self.gateway(credential)
        for before in setup:
            status, answer = g.call(action, before)
            self.assertEqual((status, gw.error_code(answer)), (200, None), answer)
        answers = []
        for _ in range(2):  # the same call twice: the same code, a fresh RequestId each time
            status, answer = g.call(action, params)
            self.assertEqual(status, 200, answer)
            self.assertEqual(set(answer), {"Response"}, answer)
            response = answer["Response"]
            self.assertEqual(set(response), {"Error", "RequestId"}, answer)
            self.assertEqual(response["Error"]["Code"], code, answer)
            self.assertTrue(response["Error"]["Message"], answer)
            self.assertRegex(response["RequestId"], UUID_RE)
            rec = self.record(response["RequestId"])  # the simulator's answer, passed on
            self.assertEqual(rec["error_code"], code)
            self.assertEqual(rec["action"], action)
            self.assertEqual(json.loads(harness.Simulator.record_body_bytes(rec)), params)
            self.assertIn("Credential=%s/" % (ROOT if credential == ROOT_NEWER_SPEC
                                              else credential),
                          rec["headers"]["authorization"])
            answers.append(response)
        self.assertNotEqual(answers[0]["RequestId"], answers[1]["RequestId"])
        self.assertEqual(answers[0]["Error"], answers[1]["Error"])


def _make_code_test(code):
    def test(self):
        self.check_code(code)
    test.__doc__ = "%s reaches the caller unchanged" % code
    return test


for _code in CASES:
    setattr(TestEveryCodeThroughTheGateway,
            "test_" + _code.replace(".", "_").lower(), _make_code_test(_code))


class TestSdkReadsEveryCode(ErrorCodesCase):
    """The official SDK's CommonClient, through the gateways, with a key each gateway issued."""

    def sdk_key(self, g):
        out = gw.run_tcgw(["callers", "add", "sdk-client", "--sdk-key", "--policy", "allow-all",
                           "--config", g.config_path]).stdout.decode()
        secret_id = re.search(r"AKIDtcgw[A-Za-z0-9]{28}", out).group(0)
        secret_key = [w for w in re.split(r"[\s:=\"]+", out)
                      if re.fullmatch(r"[A-Za-z0-9]{32}", w)][0]
        g.reload()
        return {"secretId": secret_id, "secretKey": secret_key}

    def test_sdk_reads_each_code(self):
        if shutil.which("node") is None or not os.path.isdir(os.path.join(NODE_DIR,
                                                                         "node_modules")):
            raise AssertionError("node and tests/node/node_modules are needed (npm install)")
        by_credential = {}
        for code, (credential, action, params, setup) in CASES.items():
            calls = by_credential.setdefault(credential, [])
            # the SDK's own tokens, so the Python tests' ClientTokens do not interfere
            sdk_params = dict(params)
            if "ClientToken" in sdk_params:
                sdk_params["ClientToken"] = "sdk-" + sdk_params["ClientToken"]
            for before in setup:
                before = dict(before, ClientToken="sdk-" + before["ClientToken"])
                calls.append({"code": None, "action": action, "params": before})
            calls.append({"code": code, "action": action, "params": sdk_params})
        seen = set()
        for credential, calls in by_credential.items():
            g = self.gateway(credential)
            payload = {"port": g.port, "mode": "host", "credential": self.sdk_key(g),
                       "calls": [{"action": c["action"], "params": c["params"]} for c in calls]}
            proc = subprocess.run(["node", SDK_CLIENT_JS], input=json.dumps(payload).encode(),
                                  capture_output=True, timeout=60, env=node_env(), cwd=NODE_DIR,
                                  check=False)
            self.assertEqual(proc.returncode, 0, proc.stderr.decode(errors="replace"))
            results = json.loads(proc.stdout)
            self.assertEqual(len(results), len(calls))
            for call, result in zip(calls, results):
                with self.subTest(code=call["code"], credential=credential):
                    if call["code"] is None:
                        self.assertTrue(result["ok"], result)
                        continue
                    self.assertFalse(result["ok"], result)
                    err = result["error"]
                    self.assertTrue(err["isSdkException"], err)
                    self.assertEqual(err["name"], "TencentCloudSDKHttpException")
                    self.assertEqual(err["code"], call["code"], err)
                    self.assertTrue(err["message"], err)
                    self.assertRegex(err["requestId"], UUID_RE)
                    self.assertEqual(self.record(err["requestId"])["error_code"], call["code"])
                    seen.add(call["code"])
        self.assertEqual(seen, set(CASES))


if __name__ == "__main__":
    unittest.main()
