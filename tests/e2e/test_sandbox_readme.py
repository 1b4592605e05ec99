"""The sandbox guide in README.md ("### The GAAP simulator") works as written.

The test takes the guide's ```sh blocks out of README.md itself (not a copy of them) and runs them,
in order, in one bash, in a scratch tree laid out as a fresh clone after `bash dev.sh build`:
certs/, specs/ and tests/ of this source tree, and build/tcgw and build/tests/tcgw-sim as the
binaries under test. Only SIM_PORT and GW_PORT are set, to free ports, as the guide allows. Then
it checks what the commands printed and what the simulator received, and stops the two processes
the guide left running.

Run: cd tests/e2e && TCGW_BIN=... TCGW_SIM_BIN=... python3 -m unittest -v test_sandbox_readme
"""
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import gw
import harness

SECTION = "### The GAAP simulator"
RUN_TIMEOUT = 120


def guide_blocks():
    """The ```sh blocks of the sandbox guide, in order."""
    text = (harness.source_dir() / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start)
    section = text[start:end if end >= 0 else len(text)]
    return re.findall(r"^```sh\n(.*?)^```$", section, re.M | re.S)


class TestSandboxGuide(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="tcgw-sandbox-")
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name) / "tcgw"
        src = harness.source_dir()
        (self.root / "build" / "tests").mkdir(parents=True)
        for name in ("certs", "specs", "tests"):
            (self.root / name).symlink_to(src / name)
        (self.root / "build" / "tcgw").symlink_to(os.path.abspath(gw.tcgw_bin()))
        (self.root / "build" / "tests" / "tcgw-sim").symlink_to(
            os.path.abspath(harness.Simulator().binary))

    def run_guide(self, script, env):
        """Runs script; returns its stdout. Output goes to files, not pipes: the processes the
        guide leaves running must not keep the test waiting for an end of file."""
        out_path = self.root.parent / "guide.out"
        err_path = self.root.parent / "guide.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=self.root,
                                    env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)
        self.addCleanup(self.stop_group, proc.pid)
        try:
            rc = proc.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.stop_group(proc.pid)
            proc.wait()
            rc = None
        text = out_path.read_text(encoding="utf-8", errors="replace")
        diag = "%s\n%s" % (text, err_path.read_text(encoding="utf-8", errors="replace"))
        self.assertIsNotNone(rc, "the guide did not finish in %d s:\n%s" % (RUN_TIMEOUT, diag))
        self.assertEqual(rc, 0, diag)
        return text

    @staticmethod
    def stop_group(pgid):
        """SIGTERM to what the guide started (its own process group), then SIGKILL leftovers."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)

    def test_guide_runs_as_written(self):
        blocks = guide_blocks()
        self.assertEqual(len(blocks), 2, "the guide has a simulator block and a gateway block")
        env = dict(os.environ, SIM_PORT=str(harness.free_port()),
                   GW_PORT=str(harness.free_port()))
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                     "ALL_PROXY"):
            env.pop(name, None)
        out = self.run_guide("\n".join(blocks), env)

        lines = [line for line in out.splitlines() if line.strip()]
        self.assertIn("ok", lines, out)  # the health check
        answers = [json.loads(line)["Response"] for line in lines if line.startswith("{")]
        self.assertEqual(len(answers), 3, out)
        listing, applied, migrating = answers
        fixture = json.loads(harness.default_fixture().read_text(encoding="utf-8"))
        states = json.loads((harness.source_dir() / "tests" / "sim" / "states.json")
                            .read_text(encoding="utf-8"))
        self.assertEqual(listing["TotalCount"], len(fixture["Proxies"]) + len(states["Proxies"]))
        self.assertEqual(len(listing["ProxySet"]), 2)
        self.assertNotIn("Error", applied, out)
        self.assertEqual(migrating["Error"]["Code"], "FailedOperation.Migration", out)

        records_path = self.root / "run" / "sandbox" / "sim-records.jsonl"
        records = [json.loads(l) for l in records_path.read_text(encoding="utf-8").splitlines()]
        self.assertEqual([r["request_id"] for r in records],
                         [a["RequestId"] for a in answers])
        self.assertTrue(all("Credential=AKIDsandboxROOTEXAMPLE" in r["headers"]["authorization"]
                            for r in records))


if __name__ == "__main__":
    unittest.main()
