"""The README's first command, `bash dev.sh demo` (tests/e2e/demo.py), as a newcomer runs it.

- --once: the seed call goes through and both processes are gone when the demo returns.
- interactive: the demo keeps the simulator and the gateway running and prints a curl command (and a
  Node SDK one) that work against them, as pasted into a shell; Ctrl-C (SIGINT to the whole
  foreground group, as a terminal sends it) or SIGTERM (to the demo alone, as a service manager
  sends it) stops both, and the keys, store, certificates and logs stay.

Each run uses its own --workdir, so the processes it started are the ones whose command line names
that directory.

Run: cd tests/e2e && TCGW_BIN=... TCGW_SIM_BIN=... python3 -m unittest -v test_demo
"""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import gw

DEMO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo.py")
NODE_DIR = os.path.join(gw.repo_root(), "tests", "node")
SDK_PACKAGE = os.path.join(NODE_DIR, "node_modules", "tencentcloud-sdk-nodejs-common")
READY_TIMEOUT = 90
STOP_TIMEOUT = 45
CALL_TIMEOUT = 30
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                   "ALL_PROXY")
KEPT = ("master.key", "credentials.store", "tcgw.json", "tcgw.log", "certs/ca.pem",
        "sim/sim-records.jsonl")


def processes_naming(text):
    """PIDs of live processes (zombies excluded) whose command line contains text."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmdline = f.read()
            with open("/proc/%s/stat" % name, "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # gone meanwhile
        if text.encode() in cmdline and state != b"Z":
            pids.append(int(name))
    return pids


def demo_env():
    # A proxy variable would divert curl and the SDK; unbuffered so lines arrive as printed.
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class DemoTest(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="tcgw-demo-")
        self.addCleanup(shutil.rmtree, self.work, ignore_errors=True)
        self.addCleanup(self.kill_leftovers)
        self.proc = None
        self.output = b""

    def kill_leftovers(self):
        """After a failure: end what this test started (named by its work directory)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in processes_naming(self.work):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def assertAllGone(self):
        deadline = time.monotonic() + 5  # a killed child may take a moment to be reaped
        while processes_naming(self.work) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(processes_naming(self.work), [],
                         "processes left running:\n" + self.output.decode(errors="replace"))
        for name in KEPT:
            self.assertTrue(os.path.exists(os.path.join(self.work, name)), name + " was removed")

    def start_interactive(self):
        """Starts the demo in its own process group, as a shell starts a foreground job."""
        self.proc = subprocess.Popen([sys.executable, DEMO, "--workdir", self.work],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=demo_env(),
                                     start_new_session=True)
        self.read_until(b"Press Ctrl-C", READY_TIMEOUT)
        return self.output.decode()

    def read_until(self, marker, timeout):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while marker not in self.output:
            left = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(left, 0))[0] if left > 0 else []
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                self.fail("no %r from the demo within %ds:\n%s"
                          % (marker, timeout, self.output.decode(errors="replace")))
            self.output += chunk

    def wait_stopped(self):
        try:
            rest, _ = self.proc.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail("the demo did not stop:\n" + self.output.decode(errors="replace"))
        self.output += rest
        return self.proc.returncode

    @staticmethod
    def printed_command(output, program):
        """The first line of output that is a command of program (indented, as printed)."""
        for line in output.splitlines():
            if line.strip().startswith(program + " "):
                return line.strip()
        raise AssertionError("no %s command in the demo's output:\n%s" % (program, output))

    def try_printed_commands(self, output):
        """Pastes the printed curl command (and node one, when the SDK is there) into bash."""
        curl = self.printed_command(output, "curl")
        proc = subprocess.run(["bash", "-c", curl], capture_output=True, timeout=CALL_TIMEOUT,
                              env=demo_env(), check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        answer = json.loads(proc.stdout)["Response"]
        self.assertNotIn("Error", answer)
        self.assertIn("TotalCount", answer)
        with open(os.path.join(self.work, "sim", "sim-records.jsonl"), encoding="utf-8") as f:
            records = [json.loads(line) for line in f]
        self.assertEqual(records[-1]["action"], "DescribeProxies")
        self.assertIsNone(records[-1]["error_code"])

        if shutil.which("node") is None or not os.path.isdir(SDK_PACKAGE):
            return  # test_node_sdk insists on the SDK; here the curl command is the promise
        node = self.printed_command(output, "node")
        proc = subprocess.run(["bash", "-c", node], capture_output=True, timeout=CALL_TIMEOUT,
                              env=demo_env(), cwd=NODE_DIR, check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stderr, b"")
        self.assertIn("TotalCount", json.loads(proc.stdout))

    def test_once_sends_the_seed_call_and_stops(self):
        proc = subprocess.run([sys.executable, DEMO, "--once", "--workdir", self.work],
                              capture_output=True, timeout=READY_TIMEOUT + STOP_TIMEOUT,
                              env=demo_env(), stdin=subprocess.DEVNULL, check=False)
        self.output = proc.stdout + proc.stderr
        self.assertEqual(proc.returncode, 0, self.output)
        self.assertIn(b"the simulator verified the signature: yes", proc.stdout)
        self.assertNotIn(b"Press Ctrl-C", proc.stdout)
        self.assertAllGone()

    def test_interactive_demo_serves_until_ctrl_c(self):
        output = self.start_interactive()
        self.assertIn("the simulator verified the signature: yes", output)
        self.try_printed_commands(output)
        os.killpg(self.proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        self.assertEqual(self.wait_stopped(), 0, self.output)
        self.assertIn(b"kept for the next run", self.output)
        self.assertAllGone()

    def test_interactive_demo_stops_on_sigterm(self):
        self.start_interactive()
        self.proc.send_signal(signal.SIGTERM)  # to the demo alone: it stops both
        self.assertEqual(self.wait_stopped(), 0, self.output)
        self.assertAllGone()

    def test_a_second_run_reuses_the_work_directory(self):
        """Nothing the user needs is removed: the next run starts from the same keys."""
        self.start_interactive()
        with open(os.path.join(self.work, "master.key"), "rb") as f:
            key = f.read()
        self.proc.send_signal(signal.SIGINT)
        self.assertEqual(self.wait_stopped(), 0, self.output)
        self.output = b""
        self.start_interactive()
        with open(os.path.join(self.work, "master.key"), "rb") as f:
            self.assertEqual(f.read(), key)
        self.proc.send_signal(signal.SIGINT)
        self.assertEqual(self.wait_stopped(), 0, self.output)
        self.assertAllGone()


if __name__ == "__main__":
    unittest.main()
