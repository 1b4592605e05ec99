"""End-to-end tests of `tcgw keygen` and `tcgw secrets`: the real binary, driven as an operator would.

Run from tests/e2e with TCGW_BIN pointing at the tcgw binary:
    python3 -m unittest -v test_cli_secrets
"""
import json
import os
import pty
import resource
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import termios
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

    def run_tcgw(self, *args, stdin=b"", env=None, cwd=None, timeout=60, preexec_fn=None):
        try:
            proc = subprocess.run([self.bin] + list(args), input=stdin, capture_output=True,
                                  timeout=timeout, env=env or self.env, cwd=cwd or self.dir,
                                  preexec_fn=preexec_fn)
        except subprocess.TimeoutExpired:
            self.fail("tcgw %s did not finish within %d s" % (" ".join(args), timeout))
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
        self.assertTrue(blob.startswith(b"TCGWSTORE3"))
        # No temporary file left behind; the writers' lock file stays, empty and private, and
        # the generation file records the store's generation (rollback detection).
        self.assertEqual(sorted(os.listdir(self.dir)),
                         ["credentials.store", "credentials.store.generation",
                          "credentials.store.lock", "master.key"])
        st = os.stat(self.store + ".lock")
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_size), (0o600, 0))

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
        self.assertIn("cannot open %s: wrong master key file for this store" % self.store,
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


    # ---- concurrent writers, temporary files, ownership ----

    def temp_files(self):
        return sorted(n for n in os.listdir(self.dir) if ".tmp." in n)

    def test_concurrent_puts_all_land(self):
        """20 puts at once, each of another name: the store ends with all 20 (the lock)."""
        self.keygen()
        self.put("first")
        procs = []
        for i in range(20):
            path = os.path.join(self.dir, "in%02d" % i)
            with open(path, "w") as f:
                f.write("AKIDCONCURRENTEXAMPLE%04d\n%s\n" % (i, SECRET_KEY))
            # stdin from a file: every process reads at once, none waits for the test to write.
            with open(path, "rb") as stdin:
                procs.append(subprocess.Popen(
                    [self.bin, "secrets", "put", "c%02d" % i, "--key", self.key, "--store",
                     self.store], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    env=self.env, cwd=self.dir))
        for i, proc in enumerate(procs):
            out, err = proc.communicate(timeout=120)
            self.assertEqual(proc.returncode, 0, "put c%02d: %s" % (i, err.decode()))
            self.assertNotIn(SECRET_KEY.encode(), out + err)
        got = self.list_json()
        want = [{"name": "c%02d" % i, "secret_id_tail": "%04d" % i} for i in range(20)]
        want.append({"name": "first", "secret_id_tail": "MPLE"})
        self.assertEqual(got, want)
        self.assertEqual(self.temp_files(), [])

    def test_stale_temp_file_does_not_block_put(self):
        """A writer killed mid-save leaves its temporary file; in a container every writer is
        PID 1, so a name made from the PID would be taken for good."""
        self.keygen()
        self.put("first")
        with open(self.store + ".tmp.1", "wb") as f:
            f.write(b"TCGWSTORE1 half written")
        # As PID 1 of a new PID namespace where that works (root), as in a container.
        prefix = []
        unshare = shutil.which("unshare")
        if unshare and subprocess.run([unshare, "--pid", "--fork", "true"],
                                      capture_output=True, timeout=30).returncode == 0:
            prefix = [unshare, "--pid", "--fork"]
        for name, secret_id in (("second", OTHER_ID), ("third", SECRET_ID)):
            proc = subprocess.run(prefix + [self.bin, "secrets", "put", name, "--key", self.key,
                                            "--store", self.store],
                                  input=("%s\n%s\n" % (secret_id, OTHER_KEY)).encode(),
                                  capture_output=True, timeout=60, env=self.env, cwd=self.dir)
            self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        self.assertEqual([c["name"] for c in self.list_json()], ["first", "second", "third"])
        self.assertEqual(self.temp_files(), ["credentials.store.tmp.1"])

    def test_failed_save_leaves_no_temp_file(self):
        """A save that fails while writing removes its temporary file and keeps the old store."""
        self.keygen()
        self.put("first")
        with open(self.store, "rb") as f:
            before = f.read()

        def small_files():
            # Writes past 64 bytes fail with EFBIG (instead of killing tcgw with SIGXFSZ).
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

        stdin = ("%s\n%s\n" % (OTHER_ID, OTHER_KEY)).encode()
        proc = self.run_tcgw("secrets", "put", "second", "--key", self.key, "--store", self.store,
                             stdin=stdin, preexec_fn=small_files)
        self.assert_rc(proc, 1)
        self.assertIn("cannot write", proc.err)
        self.assertIn("nothing was stored", proc.err)
        self.assert_no_secret(proc, OTHER_KEY)
        self.assertEqual(self.temp_files(), [])
        with open(self.store, "rb") as f:
            self.assertEqual(f.read(), before)
        self.assertEqual([c["name"] for c in self.list_json()], ["first"])

    def test_replace_keeps_mode_and_owner(self):
        self.keygen()
        self.put("first")
        os.chmod(self.store, 0o400)
        as_root = os.geteuid() == 0
        if as_root:
            # Owner root (allowed), group another: both must survive the replacement.
            os.chown(self.store, 0, 65534)
        self.put("second", OTHER_ID, OTHER_KEY)
        st = os.stat(self.store)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o400)
        self.assertEqual(st.st_uid, os.geteuid())
        if as_root:
            self.assertEqual(st.st_gid, 65534)
        self.assertEqual([c["name"] for c in self.list_json()], ["first", "second"])

    # ---- files that are not what they should be ----

    def serve_config(self):
        """A configuration for `tcgw serve` that would work but for the key and store files."""
        path = os.path.join(self.dir, "tcgw.json")
        root = os.environ.get("TCGW_SOURCE_DIR") or os.path.abspath(
            os.path.join(os.path.dirname(__file__), "..", ".."))
        with open(path, "w") as f:
            json.dump({"listen_address": "127.0.0.1", "listen_port": 0,
                       "spec_dir": os.path.join(root, "specs"), "master_key_file": self.key,
                       "credential_store": self.store}, f)
        return path

    def assert_refused_everywhere(self, *fragments):
        """`secrets list`, `secrets put` and `serve` all fail at once, saying fragments."""
        conf = self.serve_config()
        runs = [
            ("list", ("secrets", "list", "--key", self.key, "--store", self.store), b""),
            ("put", ("secrets", "put", "x", "--key", self.key, "--store", self.store),
             ("%s\n%s\n" % (OTHER_ID, OTHER_KEY)).encode()),
            ("serve", ("serve", "--config", conf), b""),
        ]
        for verb, args, stdin in runs:
            with self.subTest(verb=verb):
                proc = self.run_tcgw(*args, stdin=stdin, timeout=20)
                self.assert_rc(proc, 1)
                for fragment in fragments:
                    self.assertIn(fragment, proc.err)
                self.assertNotIn("event=listening", proc.err)

    def test_fifo_refused_without_hanging(self):
        """A FIFO would block open(2) until a writer came; it is refused at once instead."""
        self.keygen()
        self.put()
        for role in ("key", "store"):
            with self.subTest(role=role):
                path = self.key if role == "key" else self.store
                saved = path + ".saved"
                os.rename(path, saved)
                os.mkfifo(path, 0o600)
                try:
                    self.assert_refused_everywhere(path, "named pipe (FIFO), not a regular file")
                finally:
                    os.unlink(path)
                    os.rename(saved, path)
        self.assertEqual(self.list_json()[0]["name"], "default")

    def test_loose_modes_refused_with_the_fix(self):
        self.keygen()
        self.put()
        for path in (self.key, self.store):
            with self.subTest(path=os.path.basename(path)):
                os.chmod(path, 0o644)
                self.assert_refused_everywhere("(mode 644)", "chmod 600 %s" % path)
                os.chmod(path, 0o620)
                self.assert_refused_everywhere("chmod 600 %s" % path)
                os.chmod(path, 0o600)
        self.assertEqual(self.list_json()[0]["name"], "default")

    def test_foreign_owner_refused(self):
        """A key or store that another user owns (and so can change) is not trusted."""
        if os.geteuid() != 0:
            self.skipTest("needs root to give a file to another user")
        self.keygen()
        self.put()
        with open(self.store, "rb") as f:
            before = f.read()
        for path in (self.key, self.store):
            with self.subTest(path=os.path.basename(path)):
                os.chown(path, 65534, 65534)
                self.assert_refused_everywhere(path, "belongs to uid 65534",
                                               "chown 0 %s" % path)
                os.chown(path, 0, 0)
        with open(self.store, "rb") as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(self.list_json()[0]["name"], "default")

    def test_symlinked_store_refused(self):
        self.keygen()
        self.put()
        real = os.path.join(self.dir, "real.store")
        os.rename(self.store, real)
        os.symlink(real, self.store)
        self.assert_refused_everywhere(self.store, "symbolic link")

    # ---- the terminal ----

    def spawn_on_terminal(self, name, env=None):
        """Starts `secrets put NAME` with a new terminal as stdin and stderr."""
        master, slave = pty.openpty()
        proc = subprocess.Popen([self.bin, "secrets", "put", name, "--key", self.key, "--store",
                                 self.store], stdin=slave, stdout=subprocess.PIPE, stderr=slave,
                                env=env or self.env, cwd=self.dir)
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc, master, slave

    @staticmethod
    def echo_on(fd):
        return bool(termios.tcgetattr(fd)[3] & termios.ECHO)

    def test_terminal_restored_after_end_of_input(self):
        self.keygen()
        proc, master, slave = self.spawn_on_terminal("tty")
        self.read_until(master, b"SecretId")
        os.write(master, (SECRET_ID + "\n").encode())
        self.read_until(master, b"(not shown): ")
        self.assertFalse(self.echo_on(slave))
        os.write(master, b"\x04")  # ^D: end of input, no SecretKey
        proc.communicate(timeout=30)
        seen = self.read_available(master)
        self.assertEqual(proc.returncode, 1, seen)
        self.assertIn(b"no SecretKey", seen)
        self.assertTrue(self.echo_on(slave))
        self.assertFalse(os.path.exists(self.store))

    def test_terminal_restored_after_interrupt(self):
        self.keygen()
        proc, master, slave = self.spawn_on_terminal("tty")
        self.read_until(master, b"SecretId")
        os.write(master, (SECRET_ID + "\n").encode())
        self.read_until(master, b"(not shown): ")
        self.assertFalse(self.echo_on(slave))
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, -signal.SIGINT)
        self.assertTrue(self.echo_on(slave))
        self.assertFalse(os.path.exists(self.store))

    SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <termios.h>
/* Turning echo off fails (TCGW_SHIM=fail) or is silently ignored (TCGW_SHIM=ignore). */
int tcsetattr(int fd, int act, const struct termios *t)
{
    const char *mode = getenv("TCGW_SHIM");
    if (mode != NULL && !(t->c_lflag & ECHO)) {
        if (mode[0] == 'f') {
            errno = EIO;
            return -1;
        }
        return 0;
    }
    int (*real)(int, int, const struct termios *) =
        (int (*)(int, int, const struct termios *))dlsym(RTLD_NEXT, "tcsetattr");
    return real(fd, act, t);
}
"""

    def test_echo_that_cannot_be_turned_off_refuses(self):
        """If echo stays on, the SecretKey is not read: it would be shown as it is typed."""
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            self.skipTest("no C compiler to build the tcsetattr shim")
        src = os.path.join(self.dir, "shim.c")
        lib = os.path.join(self.dir, "shim.so")
        with open(src, "w") as f:
            f.write(self.SHIM)
        subprocess.run([cc, "-shared", "-fPIC", "-o", lib, src, "-ldl"], check=True,
                       capture_output=True, timeout=60)
        self.keygen()
        for mode in ("fail", "ignore"):
            with self.subTest(mode=mode):
                env = dict(self.env, LD_PRELOAD=lib, TCGW_SHIM=mode)
                # A sanitizer runtime wants to come first; the shim only wraps one libc call.
                env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
                proc, master, slave = self.spawn_on_terminal("tty", env=env)
                seen = self.read_until(master, b"SecretId")
                os.write(master, (SECRET_ID + "\n").encode())
                proc.communicate(timeout=30)
                seen += self.read_available(master)
                self.assertEqual(proc.returncode, 1, seen)
                self.assertIn(b"cannot turn off echo", seen)
                self.assertIn(b"standard input instead", seen)
                self.assertNotIn(b"(not shown)", seen)
                self.assertTrue(self.echo_on(slave))
                self.assertFalse(os.path.exists(self.store))

if __name__ == "__main__":
    unittest.main()
