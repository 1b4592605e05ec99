"""End to end: the credential store's master key. `tcgw store init` with a passphrase (from a file
descriptor, and from a terminal through a pty), `secrets` on a passphrase store, `tcgw store
rekey` between key files and passphrases, rollback detection and `tcgw store accept-rollback`, a
newer format refused, and `tcgw serve` started from a passphrase store through a file descriptor
(as a container would), rekeyed under load and reloaded with SIGHUP without a failed call.

Passphrase stores use the minimum Argon2id cost (--kdf insecure-test-only) to stay fast.

Run: cd tests/e2e && TCGW_BIN=... TCGW_SIM_BIN=... python3 -m unittest -v test_store_cli
"""
import os
import pty
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import gw

PASS = b"correct horse battery staple"
PASS2 = b"a second passphrase"
FAST = ["--kdf", "insecure-test-only"]


def run(args, stdin=b"", fds=None):
    """Runs tcgw with each fds[n] = bytes readable on descriptor n (a pipe); returns the
    CompletedProcess with text out/err. The passphrases never appear in argv."""
    fds = fds or {}
    pipes, keep = {}, []
    for n, data in fds.items():
        r, w = os.pipe()
        os.write(w, data)
        os.close(w)
        pipes[n] = r
    for n, r in pipes.items():
        args = [a.replace("{%d}" % n, str(r)) for a in args]
        keep.append(r)
    try:
        proc = subprocess.run([gw.tcgw_bin()] + args, input=stdin, capture_output=True,
                              timeout=60, pass_fds=keep)
    finally:
        for r in keep:
            os.close(r)
    proc.out = proc.stdout.decode(errors="replace")
    proc.err = proc.stderr.decode(errors="replace")
    return proc


class StoreCli(unittest.TestCase):

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="tcgw-store-")
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name
        self.key = os.path.join(self.dir, "master.key")
        self.store = os.path.join(self.dir, "credentials.store")
        self.files = ["--key", self.key, "--store", self.store]

    def ok(self, proc):
        self.assertEqual(proc.returncode, 0, proc.err)
        return proc

    def fails(self, proc, text):
        self.assertEqual(proc.returncode, 1, proc.out + proc.err)
        self.assertIn(text, proc.err)
        return proc

    def init_pass(self, passphrase=PASS):
        return self.ok(run(["store", "init", "--passphrase", "--passphrase-fd", "{3}"] + FAST +
                           self.files, fds={3: passphrase + b"\n"}))

    def put(self, name, sid, skey, passphrase=PASS):
        return run(["secrets", "put", name, "--passphrase-fd", "{3}"] + self.files,
                   stdin=("%s\n%s\n" % (sid, skey)).encode(), fds={3: passphrase})

    def list_names(self, passphrase=PASS, key=None):
        files = ["--key", key or self.key, "--store", self.store]
        proc = run(["secrets", "list", "--passphrase-fd", "{3}"] + files, fds={3: passphrase})
        return proc

    def test_passphrase_store_from_fd(self):
        self.init_pass()
        self.assertFalse(os.path.exists(self.key))  # no key file is made or needed
        with open(self.store, "rb") as f:
            blob = f.read()
        self.assertTrue(blob.startswith(b"TCGWSTORE3\x01"))
        self.assertNotIn(PASS, blob)
        self.assertIn("passphrase", self.ok(run(["store", "info", "--store", self.store])).out)
        self.ok(self.put("prod", gw.DEV_SECRET_ID, gw.DEV_SECRET_KEY))
        self.assertIn("prod", self.ok(self.list_names()).out)
        with open(self.store + ".generation") as f:
            self.assertEqual(f.read(), "2\n")
        # Wrong passphrase: one clear line, nothing changed.
        self.fails(self.list_names(b"wrong"), "wrong passphrase")
        proc = self.put("x", "ID", "KEY", passphrase=b"wrong")
        self.fails(proc, "wrong passphrase")
        self.assertNotIn("x ", self.ok(self.list_names()).out)
        # No passphrase and no terminal: says how to give one.
        proc = run(["secrets", "list"] + self.files, stdin=b"")
        self.assertEqual(proc.returncode, 1)
        # (Run without a controlling terminal: setsid.)
        proc = subprocess.run(["setsid", gw.tcgw_bin(), "secrets", "list"] + self.files,
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(b"--passphrase-fd N", proc.stderr)
        # init again is refused.
        proc = run(["store", "init", "--passphrase", "--passphrase-fd", "{3}"] + FAST +
                   self.files, fds={3: PASS})
        self.fails(proc, "exists already")
        # The passphrase never reaches argv or the environment by design; a bad fd is a usage error.
        proc = run(["secrets", "list", "--passphrase-fd", "x"] + self.files)
        self.assertEqual(proc.returncode, 2)

    def test_key_file_init_and_errors(self):
        proc = self.ok(run(["store", "init"] + self.files))
        self.assertIn("master key file", proc.out)
        self.assertTrue(os.path.exists(self.key))
        self.ok(run(["secrets", "list"] + self.files))
        # Key file too open: refused with the fix.
        os.chmod(self.key, 0o644)
        self.fails(run(["secrets", "list"] + self.files), "chmod 600")
        os.chmod(self.key, 0o600)
        # Corrupt store.
        with open(self.store, "rb") as f:
            good = f.read()
        bad = bytearray(good)
        bad[-5] ^= 1
        with open(self.store, "wb") as f:
            f.write(bad)
        self.fails(run(["secrets", "list"] + self.files), "damaged or was modified")
        # A newer format.
        with open(self.store, "wb") as f:
            f.write(b"TCGWSTORE4" + good[10:])
        self.fails(run(["secrets", "list"] + self.files), "newer tcgw: upgrade tcgw")
        with open(self.store, "wb") as f:
            f.write(good)
        self.ok(run(["secrets", "list"] + self.files))

    def test_rekey_round_trip_and_rollback(self):
        self.ok(run(["store", "init"] + self.files))
        self.ok(run(["secrets", "put", "prod"] + self.files,
                    stdin=("%s\n%s\n" % (gw.DEV_SECRET_ID, gw.DEV_SECRET_KEY)).encode()))
        backup = os.path.join(self.dir, "backup.store")
        shutil.copy(self.store, backup)
        # key file -> passphrase
        proc = self.ok(run(["store", "rekey", "--new-passphrase-fd", "{4}"] + FAST + self.files,
                           fds={4: PASS}))
        self.assertIn("old key file", proc.out)
        self.fails(run(["secrets", "list"] + self.files), "the passphrase is needed")
        self.assertIn("prod", self.ok(self.list_names()).out)
        # passphrase -> new key file; the old key file is kept, and no longer opens the store.
        new_key = os.path.join(self.dir, "new.key")
        proc = self.ok(run(["store", "rekey", "--passphrase-fd", "{3}", "--new-key", new_key] +
                           self.files, fds={3: PASS}))
        self.assertIn(new_key, proc.out)
        self.assertTrue(os.path.exists(self.key))
        self.fails(run(["secrets", "list"] + self.files), "wrong master key file")
        self.assertIn("prod", self.ok(run(["secrets", "list", "--key", new_key, "--store",
                                          self.store])).out)
        # A rekey with the wrong passphrase changes nothing and makes no key file.
        # Rollback: the backup (generation 1, under the old key) is put back: refused.
        shutil.copy(backup, self.store)
        proc = self.fails(run(["secrets", "list"] + self.files), "older than generation")
        self.assertIn("tcgw store accept-rollback", proc.err)
        self.ok(run(["store", "accept-rollback"] + self.files))
        self.assertIn("prod", self.ok(run(["secrets", "list"] + self.files)).out)
        with open(self.store + ".generation") as f:
            self.assertEqual(f.read(), "5\n")

    def test_rekey_with_wrong_passphrase_changes_nothing(self):
        self.init_pass()
        with open(self.store, "rb") as f:
            before = f.read()
        new_key = os.path.join(self.dir, "new.key")
        self.fails(run(["store", "rekey", "--passphrase-fd", "{3}", "--new-key", new_key] +
                       self.files, fds={3: b"wrong"}), "wrong passphrase")
        self.assertFalse(os.path.exists(new_key))
        with open(self.store, "rb") as f:
            self.assertEqual(f.read(), before)

    def pty_run(self, args, answers):
        """Runs tcgw on a new pseudo-terminal, answering each prompt (a substring) in turn with
        a line. Returns (exit code, everything shown on the terminal)."""
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(gw.tcgw_bin(), [gw.tcgw_bin()] + args)
        shown = b""
        pending = list(answers)
        deadline = time.time() + 60
        while time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    data = os.read(fd, 1024)
                except OSError:
                    break
                if not data:
                    break
                shown += data
            if pending and pending[0][0] in shown:
                prompt, line = pending.pop(0)
                shown = shown.replace(prompt, b"<" + prompt + b">", 1)
                os.write(fd, line + b"\n")
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        return os.waitstatus_to_exitcode(status), shown

    def test_passphrase_from_terminal(self):
        rc, shown = self.pty_run(["store", "init", "--passphrase"] + FAST + self.files,
                                 [(b"New passphrase (not shown): ", PASS),
                                  (b"Again, to confirm: ", PASS)])
        self.assertEqual(rc, 0, shown)
        self.assertNotIn(PASS, shown)  # echo was off
        self.ok(self.list_names())
        # secrets list asks on the terminal too.
        rc, shown = self.pty_run(["secrets", "list"] + self.files,
                                 [(b"Passphrase (not shown): ", PASS)])
        self.assertEqual(rc, 0, shown)
        self.assertNotIn(PASS, shown)
        # A confirmation that differs changes nothing.
        os.unlink(self.store)
        os.unlink(self.store + ".generation")
        rc, shown = self.pty_run(["store", "init", "--passphrase"] + FAST + self.files,
                                 [(b"New passphrase (not shown): ", PASS),
                                  (b"Again, to confirm: ", PASS2)])
        self.assertEqual(rc, 1)
        self.assertIn(b"differ", shown)
        self.assertFalse(os.path.exists(self.store))


class PassphraseGateway(gw.GatewaysCase):
    """tcgw serve from a passphrase store, the passphrase on a file descriptor."""

    def start(self, g, passphrase):
        r, w = os.pipe()
        os.write(w, passphrase)
        os.close(w)
        g.write_config()
        g.log = open(g.log_path, "wb")
        g.proc = subprocess.Popen([gw.tcgw_bin(), "serve", "--config", g.config_path,
                                   "--passphrase-fd", str(r)],
                                  stdout=g.log, stderr=subprocess.STDOUT, pass_fds=(r,))
        os.close(r)
        self.addCleanup(g.stop)
        deadline = time.time() + 15
        while time.time() < deadline:
            if g.proc.poll() is not None:
                raise AssertionError("tcgw exited at start:\n%s" % g.read_log())
            for line in g.read_log().splitlines():
                if "event=listening" in line:
                    fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
                    g.port = int(fields["port"])
                    return g
            time.sleep(0.02)
        raise AssertionError("tcgw did not start:\n" + g.read_log())

    def make(self):
        d = os.path.join(self.dir, "gwp")
        os.makedirs(d)
        g = gw.Gateway(d, self.sim.port, self.sim.ca_file)
        files = ["--key", g.key_path, "--store", g.store_path]
        self.files = files
        self.assertEqual(run(["store", "init", "--passphrase", "--passphrase-fd", "{3}"] + FAST +
                             files, fds={3: PASS}).returncode, 0)
        proc = run(["secrets", "put", "default", "--passphrase-fd", "{3}"] + files,
                   stdin=("%s\n%s\n" % (gw.DEV_SECRET_ID, gw.DEV_SECRET_KEY)).encode(),
                   fds={3: PASS})
        self.assertEqual(proc.returncode, 0, proc.err)
        return g

    def load(self, g, stop, failures, answered):
        while not stop.is_set():
            try:
                _, answer = g.call("DescribeProxies", {"Limit": 1})
                code = gw.error_code(answer)
            except Exception as e:  # noqa: BLE001 - any failure counts
                code = repr(e)
            answered[0] += 1
            if code is not None:
                failures.append(code)

    def test_serve_rekey_reload_under_load(self):
        g = self.start(self.make(), PASS)
        status, answer = g.call("DescribeProxies", {"Limit": 1})
        self.assertIsNone(gw.error_code(answer), answer)
        with open(g.config_path) as f:
            self.assertNotIn(PASS.decode(), f.read())
        with open("/proc/%d/cmdline" % g.proc.pid, "rb") as f:
            self.assertNotIn(PASS, f.read())
        with open("/proc/%d/environ" % g.proc.pid, "rb") as f:
            self.assertNotIn(PASS, f.read())

        stop, failures, answered = threading.Event(), [], [0]
        threads = [threading.Thread(target=self.load, args=(g, stop, failures, answered))
                   for _ in range(3)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.3)
            # Same passphrase, new salt: a new master key; the gateway derives it again on SIGHUP.
            proc = run(["store", "rekey", "--passphrase-fd", "{3}", "--new-passphrase-fd", "{4}"] +
                       FAST + self.files, fds={3: PASS, 4: PASS})
            self.assertEqual(proc.returncode, 0, proc.err)
            self.assertIn("result=loaded", g.reload())
            time.sleep(0.3)
            # A new passphrase the gateway does not know: the reload is refused, clearly, and the
            # current snapshot keeps serving.
            proc = run(["store", "rekey", "--passphrase-fd", "{3}", "--new-passphrase-fd", "{4}"] +
                       FAST + self.files, fds={3: PASS, 4: PASS2})
            self.assertEqual(proc.returncode, 0, proc.err)
            line = g.reload()
            self.assertIn("result=refused", line)
            self.assertIn("wrong passphrase", line)
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(failures, [])
        self.assertGreater(answered[0], 10)

    def test_serve_needs_the_passphrase(self):
        g = self.make()
        g.write_config()
        proc = subprocess.run(["setsid", gw.tcgw_bin(), "serve", "--config", g.config_path],
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(b"--passphrase-fd", proc.stderr)
        r, w = os.pipe()
        os.write(w, b"wrong")
        os.close(w)
        proc = subprocess.run([gw.tcgw_bin(), "serve", "--config", g.config_path,
                               "--passphrase-fd", str(r)], capture_output=True, timeout=60,
                              pass_fds=(r,))
        os.close(r)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(b"wrong passphrase", proc.stderr)


class KeyFileGateway(gw.GatewaysCase):

    def test_rekey_new_key_file_then_sighup(self):
        g = self.gateway()
        new_key = os.path.join(g.workdir, "new.key")
        files = ["--key", g.key_path, "--store", g.store_path]
        stop, failures, answered = threading.Event(), [], [0]
        threads = [threading.Thread(target=PassphraseGateway.load,
                                    args=(self, g, stop, failures, answered)) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.3)
            proc = run(["store", "rekey", "--new-key", new_key] + files)
            self.assertEqual(proc.returncode, 0, proc.err)
            # Before the key file moves, a reload is refused and the gateway keeps serving.
            self.assertIn("result=refused", g.reload())
            old = g.key_path + ".old"
            os.rename(g.key_path, old)  # kept for the backups made under it
            os.rename(new_key, g.key_path)
            self.assertIn("result=loaded", g.reload())
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(failures, [])


if __name__ == "__main__":
    unittest.main()
