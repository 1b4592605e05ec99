"""Hostile corpus: what a local process on the same host can read of a running gateway.

The SecretKey must not appear in the gateway's command line, environment, log or configuration;
core dumps are off; SSLKEYLOGFILE (which would make libcurl write TLS session keys, so that
captured signed calls could be decrypted) is ignored; and the process is not dumpable, so a
process of the same user cannot read its memory (checked only when not running as root, since
root reads any process's memory).
"""
import os
import unittest

import gw
import hostile as H


class LocalProcess(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.keylog = None
        cls.stack = None
        import tempfile
        cls.tmp = tempfile.TemporaryDirectory(prefix="tcgw-hostile-keylog-")
        cls.keylog = os.path.join(cls.tmp.name, "keys.log")
        cls.stack = H.Stack(None, env={"SSLKEYLOGFILE": cls.keylog})

    @classmethod
    def tearDownClass(cls):
        try:
            cls.stack.close()
        finally:
            cls.tmp.cleanup()

    def setUp(self):
        self.stack.test = self
        self.pid = self.stack.pid()

    def test_secret_key_is_nowhere_readable(self):
        for _ in range(3):
            self.stack.alive()
        secret = gw.DEV_SECRET_KEY.encode()
        places = {"cmdline": "/proc/%d/cmdline" % self.pid,
                  "environ": "/proc/%d/environ" % self.pid,
                  "log": self.stack.gw.log_path,
                  "config": self.stack.gw.config_path,
                  "store": self.stack.gw.store_path}
        for name, path in places.items():
            with self.subTest(place=name):
                with open(path, "rb") as f:
                    self.assertNotIn(secret, f.read(), "the SecretKey is readable in " + path)

    def test_core_dumps_are_off(self):
        with open("/proc/%d/limits" % self.pid) as f:
            line = [ln for ln in f if ln.startswith("Max core file size")][0]
        self.assertEqual(line.split()[4:6], ["0", "0"], line)

    def test_sslkeylogfile_is_ignored(self):
        self.stack.alive()
        self.assertFalse(os.path.exists(self.keylog), "TLS session keys were written out")
        self.assertIn("SSLKEYLOGFILE", self.stack.gw.read_log())

    def test_memory_is_not_readable_by_the_same_user(self):
        if os.geteuid() == 0:
            self.skipTest("running as root, which may read any process's memory")
        with self.assertRaises(PermissionError):
            open("/proc/%d/mem" % self.pid, "rb").close()


if __name__ == "__main__":
    unittest.main()
