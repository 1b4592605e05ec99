"""Hostile corpus, category e: signals.

SIGHUP (a closed terminal, an operator's reflex for "reload") must not kill the gateway. SIGTERM
under load must give calls already upstream their real answer, answer calls that arrive on
kept-alive connections afterwards with ServiceUnavailable ("not sent", Connection: close), and end
the process as soon as the calls in flight are done, not after upstream.timeout_ms.
"""
import os
import re
import signal
import tempfile
import threading
import time
import unittest

import harness
import hostile as H

SEED = b'{"ProxyId": "link-4ftf12sb", "Concurrent": "2", "Bandwidth": "10"}'
SLOW_ANSWER = b'{"Response":{"RequestId":"answer-of-the-call-in-flight"}}'
UPSTREAM_DELAY = 1.0
EXIT_BOUND = 5.0


def wait_for(predicate, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class Signals(unittest.TestCase):

    def stack(self, **kw):
        st = H.Stack(self, **kw)
        self.addCleanup(st.close)
        return st

    def test_sighup_does_not_kill(self):
        st = self.stack()
        st.alive()
        for _ in range(3):
            os.kill(st.pid(), signal.SIGHUP)
            time.sleep(0.3)
        time.sleep(0.5)
        rc = st.gw.proc.poll()
        self.assertIsNone(rc, "SIGHUP ended the gateway (exit status %s):\n%s" % (
            rc, H.tail(st.gw)))
        st.alive()
        log = st.gw.read_log()
        self.assertRegex(log, r"(?i)(sighup|signal=(1|hup)\b)",
                         "no log line mentions the SIGHUP it received")
        H.report("SIGHUP", ["3 x SIGHUP: still running, answered a normal call; log: %s" % (
            [line for line in log.splitlines() if re.search(r"(?i)hup|signal=1\b", line)][:1])])

    def test_sigterm_under_load(self):
        tmp = tempfile.TemporaryDirectory(prefix="tcgw-hostile-certs-")
        self.addCleanup(tmp.cleanup)
        certs = harness.make_certs(os.path.join(tmp.name, "certs"))
        up = H.FaultUpstream(certs["server_cert"], certs["server_key"],
                             lambda request: ("delay", UPSTREAM_DELAY, 200, SLOW_ANSWER))
        self.addCleanup(up.stop)
        st = self.stack(certs=certs, routes=[("gaap.tencentcloudapi.com", up.port)],
                        config={"upstream": {"timeout_ms": 20000}})

        # Kept-alive connections, each with one call answered already (refused by validation,
        # so the upstream sees nothing of them).
        kept = []
        for _ in range(4):
            s = H.connect(st.port)
            self.addCleanup(s.close)
            a = H.RawAnswer()
            s.sendall(H.valid_call(body=b'{"Bogus": 1}'))
            H.read_answer(s, a, close_wait=0)
            self.assertEqual((a.tencent_error() or ("none",))[0], "UnknownParameter",
                             a.describe())
            self.assertFalse(a.closed)
            kept.append(s)

        # One call in flight: the upstream answers it after UPSTREAM_DELAY.
        in_flight = {}

        def call_in_flight():
            in_flight["answer"] = H.exchange(
                st.port, H.valid_call(action=b"ModifyProxyConfiguration", body=SEED),
                timeout=15, close_wait=0)
        t = threading.Thread(target=call_in_flight)
        t.start()
        self.assertTrue(wait_for(lambda: up.count() == 1, 5), "the call never reached upstream")

        sent_term = time.monotonic()
        st.gw.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "stopping" in st.gw.read_log(), 1.0)

        # Calls on the kept-alive connections after SIGTERM.
        late = []
        for s in kept:
            a = H.RawAnswer()
            try:
                s.sendall(H.valid_call(action=b"ModifyProxyConfiguration", body=SEED))
            except OSError as e:
                a.send_error = type(e).__name__
            late.append(a)
        for s, a in zip(kept, late):
            H.read_answer(s, a, timeout=5, close_wait=2)

        t.join(20)
        exited = wait_for(lambda: st.gw.proc.poll() is not None, 15, step=0.01)
        exit_after = time.monotonic() - sent_term
        rc = st.gw.proc.poll()

        rows = ["call in flight: %s" % H.outcome(in_flight["answer"]),
                "upstream received %d call(s)" % up.count(),
                "process exited %.2f s after SIGTERM (status %s)" % (exit_after, rc)]
        rows += ["late call %d: %s, Connection: %s" % (i, H.outcome(a), a.header("connection"))
                 for i, a in enumerate(late)]
        H.report("SIGTERM under load", rows)

        problems = []
        a = in_flight["answer"]
        if a.status != 200 or a.body != SLOW_ANSWER:
            problems.append("the call in flight did not get its real answer: " + a.describe())
        for i, a in enumerate(late):
            err = a.tencent_error() if a.status is not None else None
            if err is None:
                problems.append("late call %d: no Tencent error (%s)" % (i, H.outcome(a)))
                continue
            if err[0] != "ServiceUnavailable" or "not sent" not in err[1]:
                problems.append("late call %d: %s %r, expected ServiceUnavailable, 'not sent'"
                                % (i, err[0], err[1]))
            if (a.header("connection") or "").lower() != "close":
                problems.append("late call %d: no Connection: close" % i)
            if not a.closed:
                problems.append("late call %d: the connection stayed open" % i)
        if up.count() != 1:
            problems.append("the upstream received %d calls; only the one in flight may reach "
                            "it" % up.count())
        if not exited:
            problems.append("the process still runs %.1f s after SIGTERM" % exit_after)
        elif exit_after > EXIT_BOUND:
            problems.append("the process exited %.1f s after SIGTERM, over %.0f s" % (
                exit_after, EXIT_BOUND))
        if exited and rc != 0:
            problems.append("exit status %s" % rc)
        self.assertEqual(problems, [], H.tail(st.gw))


if __name__ == "__main__":
    unittest.main()
