"""Starting a real tcgw gateway in front of the simulator, for end-to-end tests and the demo."""
import http.client
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

import harness
import scripted

# Dev credentials of the demo and tests: Tencent's documented example values, not a real key.
DEV_SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
DEV_SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
ALLOW_ALL = {"version": "2.0",
             "statement": [{"sid": "any-call", "effect": "allow", "action": ["*"],
                            "resource": ["*"]}]}

SEED_BODY = b'{"ProxyId": "link-4ftf12sb", "Concurrent": "2", "Bandwidth": "10"}'

UPSTREAM_HOSTS = ("gaap.tencentcloudapi.com", "gaap.ap-guangzhou.tencentcloudapi.com",
                  "gaap.intl.tencentcloudapi.com")


def repo_root():
    return os.environ.get("TCGW_SOURCE_DIR") or os.path.abspath(
        os.path.join(os.path.dirname(__file__), "..", ".."))


def tcgw_bin():
    return os.environ.get("TCGW_BIN") or os.path.join(repo_root(), "build", "tcgw")


def run_tcgw(args, stdin=b"", check=True):
    """Runs a tcgw CLI verb; secrets go through stdin only."""
    proc = subprocess.run([tcgw_bin()] + list(args), input=stdin, capture_output=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError("tcgw %s failed (%d): %s" % (" ".join(args), proc.returncode,
                                                          proc.stderr.decode(errors="replace")))
    return proc


class Gateway:
    """A tcgw process with its own master key, credential store and configuration."""

    def __init__(self, workdir, sim_port, ca_file, secret_id=DEV_SECRET_ID,
                 secret_key=DEV_SECRET_KEY, spec_dir=None, extra_config=None, connect_to=None,
                 env=None, callers=None, policies=None, unauthenticated_caller="local",
                 access=True):
        self.workdir = workdir
        self.sim_port = sim_port
        self.ca_file = ca_file
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.spec_dir = spec_dir or os.path.join(repo_root(), "specs")
        self.extra_config = extra_config or {}
        self.connect_to = connect_to
        self.env = env
        self.proc = None
        self.port = None  # the plain listener's; None when it is off
        self.tls_port = None  # the HTTPS listener's, when configured
        self.log_path = os.path.join(workdir, "tcgw.log")
        self.config_path = os.path.join(workdir, "tcgw.json")
        self.key_path = os.path.join(workdir, "master.key")
        self.store_path = os.path.join(workdir, "credentials.store")
        # By default the gateway is a sidecar: calls without identity are caller "local", whom
        # the policy "allow-all" lets make any call. Tests of identity and policy pass their own.
        self.callers = callers if callers is not None else {
            "local": {"credential": "default", "policies": ["allow-all"]}}
        self.policies = policies if policies is not None else {"allow-all": ALLOW_ALL}
        self.unauthenticated_caller = unauthenticated_caller
        self.access = access  # False: a binary from before callers and policies (benchmarks)
        self.callers_path = os.path.join(workdir, "callers.json")
        self.policy_dir = os.path.join(workdir, "policies")

    def provision(self):
        """Creates the master key and stores the credential, as an operator would."""
        if not os.path.exists(self.key_path):
            run_tcgw(["keygen", "--key", self.key_path])
        secrets = ("%s\n%s\n" % (self.secret_id, self.secret_key)).encode()
        run_tcgw(["secrets", "put", "default", "--key", self.key_path, "--store",
                  self.store_path], stdin=secrets)

    def write_access(self):
        """Writes the callers file and the policy directory (SIGHUP makes a running gateway
        read them again)."""
        os.makedirs(self.policy_dir, exist_ok=True)
        for name in os.listdir(self.policy_dir):
            if name.endswith(".json") and name[:-5] not in self.policies:
                os.unlink(os.path.join(self.policy_dir, name))
        for name, policy in self.policies.items():
            text = policy if isinstance(policy, str) else json.dumps(policy, indent=2)
            with open(os.path.join(self.policy_dir, name + ".json"), "w") as f:
                f.write(text)
        if isinstance(self.callers, str):
            text = self.callers
        else:
            existing = {}
            if os.path.exists(self.callers_path):
                with open(self.callers_path) as f:
                    existing = json.load(f).get("callers", {})
            merged = dict(existing, **self.callers)  # keeps callers added with `tcgw callers add`
            text = json.dumps({"callers": merged}, indent=2)
        with open(self.callers_path, "w") as f:
            f.write(text)
        os.chmod(self.callers_path, 0o600)

    def reload(self, timeout=10):
        """SIGHUP, then waits for the gateway's log line that says how the reload went."""
        before = self.read_log().count("event=reload")
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + timeout
        while time.time() < deadline:
            lines = [l for l in self.read_log().splitlines() if "event=reload" in l]
            if len(lines) > before:
                return lines[-1]
            time.sleep(0.02)
        raise AssertionError("no reload line after SIGHUP:\n" + self.read_log())

    def write_config(self):
        if self.access:
            self.write_access()
        connect_to = self.connect_to
        if connect_to is None:
            connect_to = ["%s:443:127.0.0.1:%d" % (h, self.sim_port) for h in UPSTREAM_HOSTS]
        config = {
            "listen_address": "127.0.0.1",
            "listen_port": 0,
            "spec_dir": self.spec_dir,
            "master_key_file": self.key_path,
            "credential_store": self.store_path,
            "upstream": {"ca_file": self.ca_file, "connect_to": connect_to,
                         "connect_timeout_ms": 3000, "timeout_ms": 10000},
        }
        if self.access:
            config["callers_file"] = self.callers_path
            config["policy_dir"] = self.policy_dir
            if self.unauthenticated_caller is not None:
                config["unauthenticated_caller"] = self.unauthenticated_caller
        else:
            config["credential"] = "default"
        for key, value in self.extra_config.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key].update(value)
            else:
                config[key] = value
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)

    def start(self, provision=True):
        if provision:
            self.provision()
        self.write_config()
        self.log = open(self.log_path, "wb")
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen([tcgw_bin(), "serve", "--config", self.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                self.proc = None
                raise AssertionError("tcgw exited at start:\n%s" % self.read_log())
            for line in self.read_log().splitlines():
                if line.startswith("{") and '"event":"listening"' in line:  # log_format json
                    line = " ".join("%s=%s" % kv for kv in json.loads(line).items())
                if "event=listening" in line:
                    fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
                    self.port = int(fields["port"]) if fields["port"].isdigit() else None
                    if "tls_port" in fields:
                        self.tls_port = int(fields["tls_port"])
                    return self
            time.sleep(0.02)
        raise AssertionError("tcgw did not start:\n" + self.read_log())

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        """SIGTERM, then a clean exit is required: sanitizer reports make the exit code nonzero."""
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("tcgw did not stop on SIGTERM:\n" + self.read_log())
        self.proc = None
        self.log.close()
        if rc != 0:
            raise AssertionError("tcgw exited with %d:\n%s" % (rc, self.read_log()))
        return rc

    def request(self, method="POST", target="/", headers=None, body=b"", timeout=30):
        """Sends one request over a fresh connection; returns (status, headers, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def call(self, action, body, version="2018-05-29", host="gaap.tencentcloudapi.com",
             target="/", extra_headers=None):
        """An API 3.0 call as a service sends it; returns (status, parsed JSON answer)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        headers = {"Host": host, "Content-Type": "application/json"}
        if action is not None:
            headers["X-TC-Action"] = action
        if version is not None:
            headers["X-TC-Version"] = version
        headers.update(extra_headers or {})
        status, _, data = self.request("POST", target, headers, body)
        return status, json.loads(data)


TOKEN_PATTERN = re.compile(r"^token: ([A-Za-z0-9_-]{43})$", re.M)


def token_of(out):
    """The bearer token `tcgw callers add` printed on its "token: " line (43 base64url
    characters, which may begin or end with '-' or '_')."""
    m = TOKEN_PATTERN.search(out)
    assert m is not None, "no token in: %r" % out
    return m.group(1)


def error_code(answer):
    return answer.get("Response", {}).get("Error", {}).get("Code")


class GatewaysCase(unittest.TestCase):
    """A simulator per test, and gateways made on demand in front of it (or of a scripted
    upstream): for tests that each need a gateway configured their own way."""

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="tcgw-e2e-")
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name
        self.sim = harness.Simulator().start(os.path.join(self.dir, "sim"),
                                             {DEV_SECRET_ID: DEV_SECRET_KEY}, rate_limit=0)
        self.addCleanup(self.sim.stop)
        self.names = iter(range(100))

    def gateway(self, upstream_port=None, ca=None, **kw):
        d = os.path.join(self.dir, "gw%d" % next(self.names))
        os.makedirs(d)
        if upstream_port is not None:
            kw["connect_to"] = ["gaap.tencentcloudapi.com:443:127.0.0.1:%d" % upstream_port]
        g = Gateway(d, self.sim.port, ca or self.sim.ca_file, **kw)
        g.start()
        self.addCleanup(g.stop)
        return g

    def scripted(self, script, cert=None, key=None):
        up = scripted.ScriptedUpstream(cert or self.sim.certs["server_cert"],
                                       key or self.sim.certs["server_key"], script)
        self.addCleanup(up.stop)
        return up
