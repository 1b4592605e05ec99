"""End-to-end tests of `tcgw keygen` and `tcgw secrets`: the real binary, driven as an operator would.

Run from tests/e2e with TCGW_BIN pointing at the tcgw binary:
    python3 -m unittest -v test_cli_secrets
"""
import json
import os
import pty
import select
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

# Tencent's documented example values, not a real credential.
SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
OTHER_ID = "AKIDEXAMPLE0000000000000000000000000"
OTHER_KEY = "abcdefghijklmnopqrstuvwxyz012345"


def tcgw_bin():
    path = os.environ.get("TCGW_BIN")
    if not path:
        root = os.environ.get("TCGW_SOURCE_DIR") or os.path.abspath(
            os.path.join(os.path.dirname(__file__), "..", ".."))
        path = os.path.join(root, "build", "tcgw")
    return path


class CliSecretsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bin = tcgw_bin()
        if not os.access(cls.bin, os.X_OK):
            raise unittest.SkipTest("no tcgw binary at %s (set TCGW_BIN)" % cls.bin)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tcgw-cli-")
        self.key = os.path.join(self.dir, "master.key")
        self.store = os.path.join(self.dir, "credentials.store")
        self.env = {k: v for k, v in os.environ.items() if k != "TCGW_MASTER_KEY_FILE"}

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_tcgw(self, *args, stdin=b"", env=None, cwd=None):
        proc = subprocess.run([self.bin] + list(args), input=stdin, capture_output=True,
                              timeout=60, env=env or self.env, cwd=cwd or self.dir)
        proc.out = proc.stdout.decode("utf-8", "replace")
        proc.err = proc.stderr.decode("utf-8", "replace")
        return proc

    def assert_rc(self, proc, rc):
        self.assertEqual(proc.returncode, rc,
                         "exit %d, wanted %d\nstdout: %s\nstderr: %s" %
                         (proc.returncode, rc, proc.out, proc.err))

    def assert_no_secret(self, proc, *secrets):
        for s in secrets or (SECRET_ID, SECRET_KEY):
            self.assertNotIn(s, proc.out)
            self.assertNotIn(s, proc.err)

    def keygen(self, path=None):
        proc = self.run_tcgw("keygen", "--key", path or self.key)
        self.assert_rc(proc, 0)
        return proc

    def put(self, name="default", secret_id=SECRET_ID, secret_key=SECRET_KEY, rc=0, key=None):
        stdin = ("%s\n%s\n" % (secret_id, secret_key)).encode()
        proc = self.run_tcgw("secrets", "put", name, "--key", key or self.key, "--store",
                             self.store, stdin=stdin)
        self.assert_rc(proc, rc)
        self.assert_no_secret(proc, secret_key)
        if rc == 0:
            self.assertNotIn(secret_id, proc.out + proc.err)
        return proc

    def list_json(self):
        proc = self.run_tcgw("secrets", "list", "--key", self.key, "--store", self.store, "--json")
        self.assert_rc(proc, 0)
        return json.loads(proc.out)

    # ---- keygen ----

    def test_keygen_mode_and_no_overwrite(self):
        proc = self.keygen()
        self.assertIn(self.key, proc.out)
        st = os.stat(self.key)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_size, 32)
        with open(self.key, "rb") as f:
            before = f.read()

        proc = self.run_tcgw("keygen", "--key", self.key)
        self.assert_rc(proc, 1)
        self.assertIn(self.key, proc.err)
        self.assertIn("exists", proc.err)
        with open(self.key, "rb") as f:
            self.assertEqual(f.read(), before)

    def test_keygen_from_environment(self):
        env = dict(self.env, TCGW_MASTER_KEY_FILE=self.key)
        proc = self.run_tcgw("keygen", env=env)
        self.assert_rc(proc, 0)
        self.assertEqual(stat.S_IMODE(os.stat(self.key).st_mode), 0o600)

    # ---- put and list ----

    def test_put_then_list(self):
        self.keygen()
        proc = self.put()
        self.assertIn("stored credential 'default'", proc.out)
        self.assertIn("...MPLE", proc.out)
        self.assertIn(self.store, proc.out)
        self.assertEqual(stat.S_IMODE(os.stat(self.store).st_mode), 0o600)

        proc = self.run_tcgw("secrets", "list", "--key", self.key, "--store", self.store)
        self.assert_rc(proc, 0)
        self.assertIn("default", proc.out)
        self.assertIn("MPLE", proc.out)
        self.assert_no_secret(proc)

        self.assertEqual(self.list_json(), [{"name": "default", "secret_id_tail": "MPLE"}])

        # The store holds no plaintext; the key file is not the secret either.
        with open(self.store, "rb") as f:
            blob = f.read()
        for s in (SECRET_ID, SECRET_KEY, "default"):
            self.assertNotIn(s.encode(), blob)
        self.assertTrue(blob.startswith(b"TCGWSTORE1"))
        # No temporary file left behind.
        self.assertEqual(sorted(os.listdir(self.dir)), ["credentials.store", "master.key"])

    def test_put_many_and_replace(self):
        self.keygen()
        self.put("prod")
        self.put("dev", OTHER_ID, OTHER_KEY)
        self.assertEqual(self.list_json(), [{"name": "dev", "secret_id_tail": "0000"},
                                            {"name": "prod", "secret_id_tail": "MPLE"}])
        proc = self.put("prod", "AKIDEXAMPLE9999", OTHER_KEY)
        self.assertIn("replaced credential 'prod'", proc.out)
        self.assertEqual(self.list_json(), [{"name": "dev", "secret_id_tail": "0000"},
                                            {"name": "prod", "secret_id_tail": "9999"}])

    def test_list_empty(self):
        self.keygen()
        proc = self.run_tcgw("secrets", "list", "--key", self.key, "--store", self.store)
        self.assert_rc(proc, 0)
        self.assertIn("no credentials", proc.out)
        self.assertEqual(self.list_json(), [])

    def test_config_file_paths(self):
        """--config: relative paths are taken from the config file's directory."""
        conf_dir = os.path.join(self.dir, "etc")
        os.mkdir(conf_dir)
        conf = os.path.join(conf_dir, "tcgw.json")
        with open(conf, "w") as f:
            json.dump({"master_key_file": "m.key", "credential_store": "c.store"}, f)
        elsewhere = os.path.join(self.dir, "elsewhere")
        os.mkdir(elsewhere)
        self.assert_rc(self.run_tcgw("keygen", "--config", conf, cwd=elsewhere), 0)
        self.assertTrue(os.path.exists(os.path.join(conf_dir, "m.key")))
        proc = self.run_tcgw("secrets", "put", "default", "--config", conf, cwd=elsewhere,
                             stdin=("%s\n%s\n" % (SECRET_ID, SECRET_KEY)).encode())
        self.assert_rc(proc, 0)
        self.assertTrue(os.path.exists(os.path.join(conf_dir, "c.store")))
        self.assertEqual(os.listdir(elsewhere), [])
        proc = self.run_tcgw("secrets", "list", "--config", conf, "--json", cwd=elsewhere)
        self.assert_rc(proc, 0)
        self.assertEqual(json.loads(proc.out), [{"name": "default", "secret_id_tail": "MPLE"}])

    def test_key_from_environment(self):
        self.keygen()
        self.put()
        env = dict(self.env, TCGW_MASTER_KEY_FILE=self.key)
        proc = self.run_tcgw("secrets", "list", "--store", self.store, "--json", env=env)
        self.assert_rc(proc, 0)
        self.assertEqual(json.loads(proc.out)[0]["name"], "default")

    def test_terminal_prompts_and_hides_the_key(self):
        """On a terminal: prompts on stderr, the SecretKey is not echoed."""
        self.keygen()
        master, slave = pty.openpty()
        try:
            proc = subprocess.Popen([self.bin, "secrets", "put", "tty", "--key", self.key,
                                     "--store", self.store], stdin=slave, stdout=subprocess.PIPE,
                                    stderr=slave, env=self.env, cwd=self.dir)
            os.close(slave)
            slave = -1
            seen = self.read_until(master, b"SecretId")
            os.write(master, (SECRET_ID + "\n").encode())
            seen += self.read_until(master, b"(not shown): ")
            os.write(master, (SECRET_KEY + "\n").encode())
            out, _ = proc.communicate(timeout=30)
            seen += self.read_available(master)
        finally:
            if slave >= 0:
                os.close(slave)
            os.close(master)
        self.assertEqual(proc.returncode, 0, seen)
        self.assertIn(b"stored credential 'tty'", out)
        self.assertNotIn(SECRET_KEY.encode(), seen)
        self.assertNotIn(SECRET_KEY.encode(), out)

    @staticmethod
    def read_available(fd, wait=0.2):
        data = b""
        while select.select([fd], [], [], wait)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        return data

    def read_until(self, fd, marker, timeout=20):
        data = b""
        deadline = time.monotonic() + timeout
        while marker not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("no %r from tcgw on the terminal; got %r" % (marker, data))
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.fail("terminal closed before %r; got %r" % (marker, data))
                data += chunk
        return data

    # ---- refusals ----

    def test_bad_input_on_stdin(self):
        self.keygen()
        cases = [
            (b"", "no SecretId"),
            (("%s\n" % SECRET_ID).encode(), "no SecretKey"),
            (("%s\r\n%s\r\n" % (SECRET_ID, SECRET_KEY)).encode(), "carriage return"),
            (("AKID EXAMPLE\n%s\n" % SECRET_KEY).encode(), "whitespace"),
            (("%s\n%s x\n" % (SECRET_ID, SECRET_KEY)).encode(), "whitespace"),
            (("%s\n%s\n" % ("A" * 129, SECRET_KEY)).encode(), "longer than"),
            (("%s\n%s\n" % (SECRET_ID, "K" * 129)).encode(), "longer than"),
            (("\n%s\n" % SECRET_KEY).encode(), "no SecretId"),
        ]
        for stdin, why in cases:
            with self.subTest(why=why):
                proc = self.run_tcgw("secrets", "put", "x", "--key", self.key, "--store",
                                     self.store, stdin=stdin)
                self.assert_rc(proc, 1)
                self.assertIn(why, proc.err)
                self.assert_no_secret(proc, SECRET_KEY, "K" * 20)
        self.assertFalse(os.path.exists(self.store))

    def test_wrong_key_file(self):
        self.keygen()
        self.put()
        other = os.path.join(self.dir, "other.key")
        self.keygen(other)
        proc = self.run_tcgw("secrets", "list", "--key", other, "--store", self.store)
        self.assert_rc(proc, 1)
        self.assertIn("cannot decrypt %s: wrong master key or the file was modified" % self.store,
                      proc.err)
        # put with the wrong key must not replace the store either.
        with open(self.store, "rb") as f:
            before = f.read()
        self.put("x", rc=1, key=other)
        with open(self.store, "rb") as f:
            self.assertEqual(f.read(), before)

    def test_missing_key_file(self):
        proc = self.run_tcgw("secrets", "list", "--key", self.key, "--store", self.store)
        self.assert_rc(proc, 1)
        self.assertIn(self.key, proc.err)
        self.assertIn("tcgw keygen", proc.err)

    def test_tampered_store(self):
        self.keygen()
        self.put()
        with open(self.store, "rb") as f:
            blob = bytearray(f.read())
        for pos in (0, 12, 40, len(blob) // 2, len(blob) - 1):
            with self.subTest(pos=pos):
                bad = bytearray(blob)
                bad[pos] ^= 0x01
                with open(self.store, "wb") as f:
                    f.write(bad)
                proc = self.run_tcgw("secrets", "list", "--key", self.key, "--store", self.store)
                self.assert_rc(proc, 1)
                self.assertIn(self.store, proc.err)
        with open(self.store, "wb") as f:
            f.write(blob[:20])
        proc = self.run_tcgw("secrets", "list", "--key", self.key, "--store", self.store)
        self.assert_rc(proc, 1)
        self.assertIn("truncated", proc.err)

    def test_loose_key_mode(self):
        self.keygen()
        self.put()
        for mode in (0o640, 0o604, 0o644):
            with self.subTest(mode=oct(mode)):
                os.chmod(self.key, mode)
                proc = self.run_tcgw("secrets", "list", "--key", self.key, "--store", self.store)
                self.assert_rc(proc, 1)
                self.assertIn("chmod 600 %s" % self.key, proc.err)
                proc = self.put("x", rc=1)
                self.assertIn("chmod 600", proc.err)

    def test_usage_errors(self):
        self.keygen()
        cases = [
            ("secrets",),
            ("secrets", "frobnicate"),
            ("secrets", "put"),
            ("secrets", "put", "--key", self.key, "--store", self.store),
            ("secrets", "put", "bad name", "--key", self.key, "--store", self.store),
            ("secrets", "put", "a/b", "--key", self.key, "--store", self.store),
            ("secrets", "put", "x", "--json", "--key", self.key, "--store", self.store),
            ("secrets", "list", "extra", "--key", self.key, "--store", self.store),
            ("secrets", "list", "--key"),
            ("secrets", "list", "--key", self.key, "--key", self.key),
            ("secrets", "list", "--bogus"),
            ("keygen", "--bogus"),
            ("keygen", "--key"),
            ("keygen", "stray"),
        ]
        for args in cases:
            with self.subTest(args=args):
                proc = self.run_tcgw(*args)
                self.assert_rc(proc, 2)
                self.assertIn("usage", proc.err + proc.out)

    def test_secret_on_argv_refused(self):
        """put never takes a secret from the command line, and does not echo what it was given."""
        self.keygen()
        proc = self.run_tcgw("secrets", "put", "default", SECRET_ID, SECRET_KEY, "--key",
                             self.key, "--store", self.store)
        self.assert_rc(proc, 2)
        self.assertIn("standard input", proc.err)
        self.assert_no_secret(proc)
        proc = self.run_tcgw("secrets", "put", "default", "--secret-key=" + SECRET_KEY, "--key",
                             self.key, "--store", self.store)
        self.assert_rc(proc, 2)
        self.assert_no_secret(proc)
        self.assertFalse(os.path.exists(self.store))

    def test_help(self):
        for args in (("secrets", "--help"), ("keygen", "--help"), ("secrets", "put", "-h")):
            with self.subTest(args=args):
                proc = self.run_tcgw(*args)
                self.assert_rc(proc, 0)
                self.assertIn("usage", proc.out)


if __name__ == "__main__":
    unittest.main()
