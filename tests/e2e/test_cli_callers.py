"""End-to-end tests of `tcgw callers`: the real binary, driven as an operator would.

Run from tests/e2e with TCGW_BIN pointing at the tcgw binary:
    python3 -m unittest -v test_cli_callers
"""
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import unittest

from test_cli_secrets import SECRET_ID, SECRET_KEY, tcgw_bin

TOKEN_RE = re.compile(r"^token: ([A-Za-z0-9_-]{43})$", re.M)


class CliCallersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bin = tcgw_bin()
        if not os.access(cls.bin, os.X_OK):
            raise unittest.SkipTest("no tcgw binary at %s (set TCGW_BIN)" % cls.bin)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tcgw-callers-")
        self.config = os.path.join(self.dir, "tcgw.json")
        self.callers = os.path.join(self.dir, "callers.json")
        self.store = os.path.join(self.dir, "credentials.store")
        with open(self.config, "w") as f:
            json.dump({}, f)  # every path is the default, beside the config file
        self.env = {k: v for k, v in os.environ.items() if k != "TCGW_MASTER_KEY_FILE"}
        self.run_ok("keygen", "--config", self.config)
        self.run_ok("secrets", "put", "default", "--config", self.config,
                    stdin=("%s\n%s\n" % (SECRET_ID, SECRET_KEY)).encode())

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_tcgw(self, *args, stdin=b"", timeout=60):
        proc = subprocess.run([self.bin] + list(args), input=stdin, capture_output=True,
                              timeout=timeout, env=self.env, cwd=self.dir)
        proc.out = proc.stdout.decode("utf-8", "replace")
        proc.err = proc.stderr.decode("utf-8", "replace")
        return proc

    def run_rc(self, rc, *args, **kw):
        proc = self.run_tcgw(*args, **kw)
        self.assertEqual(proc.returncode, rc, "tcgw %s: exit %d, wanted %d\nstdout: %s\nstderr: %s"
                         % (" ".join(args), proc.returncode, rc, proc.out, proc.err))
        return proc

    def run_ok(self, *args, **kw):
        return self.run_rc(0, *args, **kw)

    def callers_cmd(self, *args, rc=0):
        return self.run_rc(rc, "callers", *args, "--config", self.config)

    def list_json(self):
        return json.loads(self.callers_cmd("list", "--json").out)

    def files_bytes(self):
        """Every file the gateway's directory holds, as bytes."""
        blobs = {}
        for name in os.listdir(self.dir):
            with open(os.path.join(self.dir, name), "rb") as f:
                blobs[name] = f.read()
        return blobs

    def assert_nowhere(self, secret):
        for name, blob in self.files_bytes().items():
            self.assertNotIn(secret.encode(), blob, "%s holds the secret in clear" % name)

    # ---- add, list, remove ----

    def test_token_printed_once_and_not_stored(self):
        proc = self.callers_cmd("add", "capacity-bot", "--policy", "capacity-bot", "--policy",
                                "auditor", "--attribute", "team=network")
        tokens = TOKEN_RE.findall(proc.out)
        self.assertEqual(len(tokens), 1, proc.out)
        token = tokens[0]
        self.assertNotIn(token, proc.err)
        self.assertEqual(proc.out.count(token), 1)
        self.assert_nowhere(token)

        st = os.stat(self.callers)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        with open(self.callers) as f:
            doc = json.load(f)
        entry = doc["callers"]["capacity-bot"]
        self.assertRegex(entry["token_sha"], r"^[0-9a-f]{64}$")
        self.assertEqual(entry["credential"], "default")
        self.assertEqual(entry["policies"], ["capacity-bot", "auditor"])
        self.assertEqual(entry["attributes"], {"team": "network"})

        # list: names, methods, credential, policies; never the hash.
        listed = self.list_json()
        self.assertEqual(listed, [{"name": "capacity-bot", "methods": ["token"],
                                   "credential": "default",
                                   "policies": ["capacity-bot", "auditor"],
                                   "attributes": {"team": "network"}}])
        human = self.callers_cmd("list").out
        self.assertIn("capacity-bot", human)
        self.assertNotIn(entry["token_sha"], human)
        self.assertNotIn(token, human)

        # The token is never shown again; a second add of the name is refused.
        proc = self.callers_cmd("add", "capacity-bot", rc=1)
        self.assertIn("callers remove capacity-bot", proc.err)
        self.assertEqual(proc.out, "")

        proc = self.callers_cmd("remove", "capacity-bot")
        self.assertIn("removed caller 'capacity-bot'", proc.out)
        self.assertEqual(self.list_json(), [])
        self.callers_cmd("remove", "capacity-bot", rc=1)

    def test_json_add_and_token_hash_is_keyed(self):
        a = json.loads(self.callers_cmd("add", "a", "--json").out)
        b = json.loads(self.callers_cmd("add", "b", "--json").out)
        self.assertEqual(set(a), {"name", "token"})
        self.assertNotEqual(a["token"], b["token"])
        with open(self.callers) as f:
            doc = json.load(f)
        import hashlib
        for who in (a, b):
            sha = doc["callers"][who["name"]]["token_sha"]
            # A keyed hash: not a plain hash of the token anyone could compute.
            self.assertNotEqual(sha, hashlib.sha256(who["token"].encode()).hexdigest())
            self.assertNotEqual(sha, hashlib.blake2b(who["token"].encode(),
                                                     digest_size=32).hexdigest())

    def test_sdk_key_in_store_not_in_callers_file(self):
        proc = self.callers_cmd("add", "billing", "--sdk-key", "--policy", "auditor")
        secret_id = re.search(r"^SecretId:\s+(AKIDtcgw[A-Za-z0-9]{28})$", proc.out, re.M).group(1)
        secret_key = re.search(r"^SecretKey:\s+([A-Za-z0-9]{32})$", proc.out, re.M).group(1)
        self.assertNotIn(secret_key, proc.err)
        self.assertIsNone(TOKEN_RE.search(proc.out))  # an SDK-key caller gets no token
        self.assert_nowhere(secret_key)
        with open(self.callers) as f:
            doc = json.load(f)
        self.assertEqual(doc["callers"]["billing"]["sdk_secret_id"], secret_id)
        self.assertNotIn("token_sha", doc["callers"]["billing"])
        with open(self.store, "rb") as f:
            self.assertNotIn(secret_id.encode(), f.read())  # encrypted

        listed = self.list_json()
        self.assertEqual(listed[0]["methods"], ["sdk_key"])
        self.assertEqual(listed[0]["secret_id_tail"], secret_id[-4:])
        self.assertNotIn(secret_key, json.dumps(listed))

        # The credentials list still shows the credential only (caller keys are another kind).
        creds = json.loads(self.run_ok("secrets", "list", "--config", self.config, "--json").out)
        self.assertEqual([c["name"] for c in creds], ["default"])

        with open(self.store, "rb") as f:
            before = f.read()
        proc = self.callers_cmd("remove", "billing")
        self.assertIn("and its SDK key from the credential store", proc.out)
        with open(self.store, "rb") as f:
            self.assertNotEqual(f.read(), before)  # the caller key went too
        # Added again under the same name: a new key pair.
        proc = self.callers_cmd("add", "billing", "--sdk-key", "--json")
        again = json.loads(proc.out)
        self.assertNotEqual(again["secret_id"], secret_id)
        self.assertNotEqual(again["secret_key"], secret_key)

    def test_certificate(self):
        proc = self.callers_cmd("add", "mesh-bot", "--certificate",
                                "spiffe://example.internal/mesh-bot")
        self.assertIsNone(TOKEN_RE.search(proc.out))
        listed = self.list_json()
        self.assertEqual(listed[0]["methods"], ["certificate"])
        self.assertEqual(listed[0]["certificate"], "spiffe://example.internal/mesh-bot")
        proc = self.callers_cmd("add", "other", "--certificate",
                                "spiffe://example.internal/mesh-bot", rc=1)
        self.assertIn("mesh-bot", proc.err)
        # A token as well, on request.
        proc = self.callers_cmd("add", "both", "--certificate", "CN-both", "--token")
        self.assertEqual(len(TOKEN_RE.findall(proc.out)), 1)

    def test_refusals(self):
        proc = self.callers_cmd("add", "x", "--credential", "prod", rc=1)
        self.assertIn("no credential 'prod'", proc.err)
        self.assertIn("tcgw secrets put prod", proc.err)
        self.assertFalse(os.path.exists(self.callers))  # nothing written
        self.callers_cmd("add", "bad/name", rc=2)
        self.callers_cmd("add", rc=2)
        self.callers_cmd("add", "x", "--attribute", "novalue", rc=2)
        self.callers_cmd("add", "x", "--policy", "../etc", rc=1)
        self.callers_cmd("frobnicate", rc=2)
        # A callers file with a mistake is named with its line, and not overwritten.
        with open(self.callers, "w") as f:
            f.write('{"callers": {\n  "a": {"credential": "default",\n        "tokn": "x"}}}\n')
        os.chmod(self.callers, 0o600)
        proc = self.callers_cmd("add", "y", rc=1)
        self.assertIn("%s:3:" % self.callers, proc.err)
        self.assertIn('"tokn" is not a known key', proc.err)
        proc = self.callers_cmd("list", rc=1)
        self.assertIn("%s:3:" % self.callers, proc.err)

    # ---- concurrency ----

    def test_concurrent_adds_keep_every_change(self):
        names = ["bot-%d" % i for i in range(8)] + ["sdk-%d" % i for i in range(4)]
        results = {}

        def add(name):
            extra = ["--sdk-key"] if name.startswith("sdk") else []
            results[name] = self.run_tcgw("callers", "add", name, *extra, "--json",
                                          "--config", self.config)

        threads = [threading.Thread(target=add, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name, proc in results.items():
            self.assertEqual(proc.returncode, 0, "%s: %s" % (name, proc.err))
        self.assertEqual(sorted(c["name"] for c in self.list_json()), sorted(names))
        # Every SDK key reached the store: removing each finds its key there.
        for name in names:
            if name.startswith("sdk"):
                proc = self.callers_cmd("remove", name)
                self.assertIn("and its SDK key from the credential store", proc.out)


if __name__ == "__main__":
    unittest.main()
