"""Helpers for the audit log's end-to-end tests: an audited gateway, reading and verifying its
log, and a private rsyslog collector."""
import json
import os
import shutil
import signal
import subprocess
import time

import gw
import harness


def keygen(directory):
    sec = os.path.join(directory, "audit.key")
    pub = os.path.join(directory, "audit.pub")
    if not os.path.exists(sec):
        gw.run_tcgw(["audit", "keygen", "--secret-key", sec, "--public-key", pub])
    return sec, pub


def audit_config(directory, **extra):
    sec, pub = keygen(directory)
    cfg = {"file": os.path.join(directory, "audit.log"), "signing_key_file": sec,
           "public_key_file": pub}
    cfg.update(extra)
    return cfg


def read_records(path):
    """The complete lines of an audit file, parsed."""
    with open(path, "rb") as f:
        data = f.read()
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def calls(path):
    return [r for r in read_records(path) if r["type"] == "call"]


def verify(files, pub, extra=()):
    """Runs tcgw audit verify; returns (exit code, stdout, stderr)."""
    proc = gw.run_tcgw(["audit", "verify", "--public-key", pub] + list(extra) + list(files),
                       check=False)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def wait_for(predicate, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Rsyslog:
    """A private rsyslogd: imtcp on a loopback port, every message's text written to one file.
    It never touches the system's rsyslog (own config, pid file, work directory)."""

    def __init__(self, directory, port=None):
        self.dir = directory
        self.port = port or harness.free_port()
        self.out = os.path.join(directory, "received.log")
        self.proc = None

    @staticmethod
    def available():
        return shutil.which("rsyslogd") is not None

    def start(self):
        os.makedirs(os.path.join(self.dir, "work"), exist_ok=True)
        conf = os.path.join(self.dir, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write('global(workDirectory="%s" maxMessageSize="64k")\n'
                    'module(load="imtcp" maxSessions="16")\n'
                    'template(name="msgonly" type="string" string="%%msg%%\\n")\n'
                    'ruleset(name="audit") {\n'
                    '  action(type="omfile" file="%s" template="msgonly" flushOnTXEnd="on"'
                    ' asyncWriting="off")\n'
                    '}\n'
                    'input(type="imtcp" port="%d" address="127.0.0.1" ruleset="audit"'
                    ' supportOctetCountedFraming="on")\n'
                    % (os.path.join(self.dir, "work"), self.out, self.port))
        self.log = open(os.path.join(self.dir, "rsyslogd.log"), "ab")
        self.proc = subprocess.Popen(
            ["rsyslogd", "-n", "-f", conf, "-i", os.path.join(self.dir, "rsyslogd.pid")],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._listening, 10, "rsyslogd to listen")
        return self

    def _listening(self):
        import socket
        if self.proc.poll() is not None:
            raise AssertionError("rsyslogd exited: " + open(self.log.name).read())
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()

    def lines(self):
        if not os.path.exists(self.out):
            return []
        with open(self.out, "rb") as f:
            return [l for l in f.read().split(b"\n") if l.strip()]
