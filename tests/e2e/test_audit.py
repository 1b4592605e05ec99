"""End to end: the audit log. One durable, chained, signed record per call; fail-closed when the
disk fails; rotation; kill -9; bad input."""
import glob
import json
import os
import re
import signal
import subprocess
import threading
import time
import unittest

import auditlib
import gw

BASE = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
        "X-TC-Action": "ModifyProxyConfiguration", "X-TC-Version": "2018-05-29"}


class AuditLog(gw.GatewaysCase):

    def audited(self, **audit):
        cfg = auditlib.audit_config(self.dir, **audit)
        g = self.gateway(extra_config={"audit": cfg})
        return g, cfg

    def test_records_allowed_and_refused_calls(self):
        g, cfg = self.audited()
        status, headers, data = g.request("POST", "/", BASE, gw.SEED_BODY)
        self.assertEqual(status, 200, data)
        answer = json.loads(data)
        rid = headers["X-Tcgw-Request-Id"]
        status, headers2, data2 = g.request("POST", "/", dict(BASE, **{"X-TC-Action": "Nope"}),
                                            gw.SEED_BODY)
        self.assertIn(gw.error_code(json.loads(data2)), ("InvalidAction", "UnknownParameter"))
        # refused from the head (bad framing): answered after its record too
        status3, headers3, data3 = g.request("GET", "/", BASE, b"")
        recs = auditlib.calls(cfg["file"])
        by_id = {r["request_id"]: r for r in recs}
        self.assertEqual(len(recs), 3, recs)
        ok = by_id[rid]
        self.assertEqual(ok["v"], 1)
        self.assertRegex(ok["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertEqual(ok["tc_request_id"], answer["Response"]["RequestId"])
        self.assertEqual(ok["caller"], "local")
        self.assertEqual(ok["identity"], "listener")
        self.assertEqual(ok["peer"], "127.0.0.1")
        self.assertEqual((ok["service"], ok["action"], ok["version"]),
                         ("gaap", "ModifyProxyConfiguration", "2018-05-29"))
        self.assertEqual(ok["params"], json.loads(gw.SEED_BODY))
        self.assertEqual(ok["decision"], "allow")
        self.assertEqual(ok["statement"], "allow-all.json#any-call")
        self.assertEqual(ok["credential"], "default")
        self.assertEqual(ok["outcome"], "answered")
        self.assertEqual(ok["http_status"], 200)
        self.assertEqual(ok["bytes"], {"in": len(gw.SEED_BODY), "out": len(data)})
        self.assertGreater(ok["latency_us"]["upstream"], 0)
        bad = by_id[headers2["X-Tcgw-Request-Id"]]
        self.assertEqual(bad["error_source"], "gateway")
        self.assertEqual(bad["outcome"], "none")
        head = by_id[headers3["X-Tcgw-Request-Id"]]
        self.assertEqual(head["error_code"], gw.error_code(json.loads(data3)))
        g.stop()
        rc, out, err = auditlib.verify([cfg["file"]], cfg["public_key_file"])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("3 call records", out)
        self.assertNotIn("warning", err)  # sealed at stop

    def test_denied_call_names_the_failed_condition(self):
        policy = {"version": "2.0", "statement": [
            {"sid": "small", "effect": "allow", "action": ["gaap:ModifyProxyConfiguration"],
             "resource": ["*"],
             "condition": {"numeric_less_than_equal": {"gaap:Bandwidth": 5}}}]}
        cfg = auditlib.audit_config(self.dir)
        g = self.gateway(extra_config={"audit": cfg}, policies={"p": policy},
                         callers={"local": {"credential": "default", "policies": ["p"]}})
        status, headers, data = g.request("POST", "/", BASE, gw.SEED_BODY)
        self.assertEqual(gw.error_code(json.loads(data)), "UnauthorizedOperation")
        rec = auditlib.calls(cfg["file"])[-1]
        self.assertEqual(rec["decision"], "deny")
        self.assertTrue(rec["reason"], rec)
        self.assertEqual(self.sim.records(), [])


def readyz(g):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=10)
    try:
        conn.request("GET", "/readyz")
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


class AuditDisk(gw.GatewaysCase):
    """Fail closed on a real full filesystem: a 1 MiB tmpfs mounted by the test (root here)."""

    def setUp(self):
        super().setUp()
        self.fs = os.path.join(self.dir, "fs")
        os.makedirs(self.fs)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs",
                               self.fs], capture_output=True)
        if proc.returncode != 0:
            self.skipTest("cannot mount a tmpfs here (%s): fail-closed needs a filesystem that "
                          "fills" % proc.stderr.decode().strip())
        self.addCleanup(lambda: subprocess.run(["umount", "-l", self.fs]))

    def fill(self):
        path = os.path.join(self.fs, "fill")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        return path

    def test_full_disk_refuses_then_recovers(self):
        cfg = auditlib.audit_config(self.dir, file=os.path.join(self.fs, "audit.log"),
                                    hold_ms=500)
        g = self.gateway(extra_config={"audit": cfg})
        status, _, data = g.request("POST", "/", BASE, gw.SEED_BODY)
        self.assertEqual(gw.error_code(json.loads(data)), None, data)
        self.assertEqual(readyz(g), (200, {"status": "ready"}))
        fill = self.fill()
        sent_before = len(self.sim.records())

        # Forwarded while the disk was thought fine: its record fails, its answer is withheld.
        # (The log file's last page may still hold a record or two: tmpfs allocates by page.)
        for tries in range(1, 10):
            status, h1, data = g.request("POST", "/", BASE, gw.SEED_BODY)
            answer = json.loads(data)
            if gw.error_code(answer) is not None:
                break
        self.assertEqual(gw.error_code(answer), "InternalError.AuditUnavailable", answer)
        self.assertIn("sent the call to Tencent Cloud", answer["Response"]["Error"]["Message"])
        self.assertEqual(len(self.sim.records()), sent_before + tries)
        sent_before += tries

        # Now the gateway knows: readiness says why, and nothing is forwarded.
        status, body = readyz(g)
        self.assertEqual(status, 503, body)
        self.assertIn("No space left on device", body["reason"])
        status, h2, data = g.request("POST", "/", BASE, gw.SEED_BODY)
        answer = json.loads(data)
        self.assertEqual(gw.error_code(answer), "InternalError.AuditUnavailable", answer)
        self.assertIn("was not sent to Tencent Cloud", answer["Response"]["Error"]["Message"])
        self.assertEqual(len(self.sim.records()), sent_before)
        self.assertIn("event=audit_unrecorded request_id=%s" % h1["X-Tcgw-Request-Id"],
                      g.read_log())

        # Space again: recovery by itself, the held-back records are written, calls flow.
        os.unlink(fill)
        auditlib.wait_for(lambda: readyz(g)[0] == 200, 10, "readiness to recover")
        status, h3, data = g.request("POST", "/", BASE, gw.SEED_BODY)
        self.assertIsNone(gw.error_code(json.loads(data)), data)
        g.stop()
        ids = [r["request_id"] for r in auditlib.calls(cfg["file"])]
        for h in (h1, h2, h3):
            self.assertIn(h["X-Tcgw-Request-Id"], ids)
        rc, out, err = auditlib.verify([cfg["file"]], cfg["public_key_file"])
        self.assertEqual(rc, 0, out + err)

    def test_removed_file_is_recreated(self):
        cfg = auditlib.audit_config(self.dir)
        g = self.gateway(extra_config={"audit": cfg})
        g.request("POST", "/", BASE, gw.SEED_BODY)
        os.rename(cfg["file"], cfg["file"] + ".old")
        os.unlink(cfg["file"] + ".old")
        _, h, data = g.request("POST", "/", BASE, gw.SEED_BODY)
        self.assertIsNone(gw.error_code(json.loads(data)), data)
        recs = auditlib.read_records(cfg["file"])
        self.assertEqual(recs[0]["type"], "genesis")
        self.assertEqual(recs[0]["reason"], "removed")
        self.assertEqual(recs[1]["request_id"], h["X-Tcgw-Request-Id"])


class AuditCrash(gw.GatewaysCase):

    def test_kill_9_under_load_then_verify(self):
        cfg = auditlib.audit_config(self.dir)
        g = self.gateway(extra_config={"audit": cfg, "threads": 2})
        answered = []
        stop = threading.Event()

        def client():
            while not stop.is_set():
                try:
                    _, h, data = g.request("POST", "/", BASE, gw.SEED_BODY, timeout=5)
                    answered.append(h["X-Tcgw-Request-Id"])
                except Exception:
                    return

        threads = [threading.Thread(target=client) for _ in range(32)]
        for t in threads:
            t.start()
        auditlib.wait_for(lambda: len(answered) > 200, 30, "calls under load")
        g.proc.send_signal(signal.SIGKILL)
        g.proc.wait()
        stop.set()
        for t in threads:
            t.join()
        g.proc = None
        g.log.close()
        # Every answer a caller got has its record: durable before the answer.
        ids = set(r["request_id"] for r in auditlib.calls(cfg["file"]))
        missing = [rid for rid in answered if rid not in ids]
        self.assertEqual(missing, [])
        rc, out, err = auditlib.verify([cfg["file"]], cfg["public_key_file"])
        self.assertEqual(rc, 0, out + err)
        # A crash mid-write leaves a torn last line: reported distinctly, not an error.
        with open(cfg["file"], "ab") as f:
            f.write(b'{"v":1,"seq":999999,"prev":"00')
        rc, out, err = auditlib.verify([cfg["file"]], cfg["public_key_file"])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("torn last line", err)
        # The next start puts the torn file aside and continues the chain in a new one.
        g.start(provision=False)
        _, h, _ = g.request("POST", "/", BASE, gw.SEED_BODY)
        g.stop()
        aside = sorted(glob.glob(cfg["file"] + ".*"))
        self.assertEqual(len(aside), 1, aside)
        first = auditlib.read_records(cfg["file"])[0]
        self.assertEqual((first["type"], first["reason"]), ("genesis", "restart"))
        self.assertEqual(first["prev_file"], os.path.basename(aside[0]))
        self.assertGreater(first["torn_bytes"], 0)
        rc, out, err = auditlib.verify(aside + [cfg["file"]], cfg["public_key_file"])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("torn last line", err)


class AuditRotation(gw.GatewaysCase):

    def test_size_rotation_and_sighup_reopen(self):
        cfg = auditlib.audit_config(self.dir, max_file_bytes=3000)
        g = self.gateway(extra_config={"audit": cfg})
        for _ in range(12):
            g.request("POST", "/", BASE, gw.SEED_BODY)
        rotated = sorted(glob.glob(cfg["file"] + ".2*"))
        self.assertGreaterEqual(len(rotated), 2, rotated)
        # logrotate with "create": rename, create empty, then SIGHUP.
        moved = cfg["file"] + ".1"
        os.rename(cfg["file"], moved)
        open(cfg["file"], "w").close()
        g.reload()
        auditlib.wait_for(lambda: os.path.getsize(cfg["file"]) > 0, 10, "the reopened file")
        _, h, _ = g.request("POST", "/", BASE, gw.SEED_BODY)
        g.stop()
        recs = auditlib.read_records(cfg["file"])
        self.assertEqual((recs[0]["type"], recs[0]["reason"]), ("genesis", "reopen"))
        self.assertEqual(recs[1]["request_id"], h["X-Tcgw-Request-Id"])
        moved_recs = auditlib.read_records(moved)
        self.assertEqual(moved_recs[-1]["type"], "seal")  # sealed at rotation
        for path in rotated:
            self.assertEqual(auditlib.read_records(path)[-1]["type"], "seal")
        series = rotated + [moved, cfg["file"]]
        rc, out, err = auditlib.verify(series, cfg["public_key_file"])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("13 call records", out)
        # Out of order, or with a file missing, the series does not verify.
        rc, out, err = auditlib.verify(series[1:], cfg["public_key_file"])
        self.assertEqual(rc, 0, out + err)  # a series may start anywhere...
        rc, out, err = auditlib.verify([series[0]] + series[2:], cfg["public_key_file"])
        self.assertEqual(rc, 1)  # ...but not skip a file
        self.assertRegex(err, r"%s:1: " % re.escape(series[2]))


class AuditBadInput(gw.GatewaysCase):
    SECRET = "Sup3r-Secret-Value-77"

    def test_hostile_values_and_sensitive_values(self):
        cfg = auditlib.audit_config(self.dir, sensitive_keys=["Password", "ProxyId"],
                                    stdout=True)
        g = self.gateway(extra_config={"audit": cfg, "max_body_bytes": 4 << 20})
        bodies = [
            {"ProxyId": self.SECRET, "Bandwidth": 10},
            {"ProxyId": self.SECRET, "Bandwidth": 10, "Password": self.SECRET},
            {"ProxyId": "x", "Bandwidth": 1, "Note": "a\nb\"}\n{\"v\":1,\"type\":\"call\"}"},
            {"ProxyId": "x", "Bandwidth": 1, "Note": "n" * (1 << 20)},
            {"ProxyId": "x" * (1 << 20), "Bandwidth": 1},
        ]
        ids = []
        for body in bodies:
            _, h, _ = g.request("POST", "/", BASE, json.dumps(body).encode())
            ids.append(h["X-Tcgw-Request-Id"])
        # raw bytes that are not UTF-8 and not JSON
        g.request("POST", "/", BASE, b'{"ProxyId": "\xff\xfe\n' + self.SECRET.encode())
        g.stop()
        with open(cfg["file"], "rb") as f:
            raw = f.read()
        self.assertNotIn(self.SECRET.encode(), raw)
        self.assertNotIn(self.SECRET, g.read_log())
        for line in raw.split(b"\n")[:-1]:
            self.assertLessEqual(len(line) + 1, 16384)
            json.loads(line)  # every line is one whole record
        recs = {r["request_id"]: r for r in auditlib.calls(cfg["file"])}
        self.assertEqual(len(recs), 6)
        first, second = recs[ids[0]], recs[ids[1]]
        self.assertTrue(first["params"]["ProxyId"].startswith("hmac-sha256:"))
        self.assertEqual(first["params"]["ProxyId"], second["params"]["ProxyId"])
        self.assertEqual(first["params"]["ProxyId"], second["params"]["Password"])
        self.assertEqual(recs[ids[2]]["params"]["Note"], bodies[2]["Note"])
        self.assertTrue(recs[ids[3]]["params_truncated"])
        # stdout: the same committed lines, for container log collectors
        stdout_lines = [l for l in g.read_log().splitlines() if l.startswith('{"v":1,')]
        self.assertEqual(len(stdout_lines), len(raw.split(b"\n")) - 1)
        rc, out, err = auditlib.verify([cfg["file"]], cfg["public_key_file"])
        self.assertEqual(rc, 0, out + err)


class AuditSyslog(gw.GatewaysCase):

    def test_records_reach_rsyslog_across_a_restart(self):
        if not auditlib.Rsyslog.available():
            self.skipTest("rsyslogd is not installed (Debian package rsyslog; dev.sh installs it)")
        rs = auditlib.Rsyslog(os.path.join(self.dir, "rsyslog"))
        os.makedirs(rs.dir)
        rs.start()
        self.addCleanup(rs.stop)
        cfg = auditlib.audit_config(self.dir, syslog={"address": "127.0.0.1", "port": rs.port,
                                                      "queue_records": 1000})
        g = self.gateway(extra_config={"audit": cfg})
        for i in range(5):
            g.request("POST", "/", BASE, json.dumps({"ProxyId": "p\n\"%d" % i,
                                                     "Bandwidth": 1}).encode())

        def file_lines():
            with open(cfg["file"], "rb") as f:
                return f.read().split(b"\n")[:-1]

        auditlib.wait_for(lambda: len(rs.lines()) >= len(file_lines()), 10, "rsyslog to receive")
        self.assertEqual(rs.lines(), file_lines())  # intact, byte for byte, in order
        rs.stop()
        # The collector is away: calls are not slowed; records wait in the queue.
        t0 = time.time()
        for i in range(5):
            _, _, data = g.request("POST", "/", BASE, gw.SEED_BODY)
            self.assertIsNone(gw.error_code(json.loads(data)))
        self.assertLess(time.time() - t0, 5)
        rs.start()
        auditlib.wait_for(lambda: len(rs.lines()) >= len(file_lines()), 20,
                          "rsyslog to receive after its restart")
        self.assertEqual(rs.lines(), file_lines())
        g.stop()


if __name__ == "__main__":
    unittest.main()
