"""Hostile corpus, category d: a hostile or broken upstream.

gaap.tencentcloudapi.com is mapped to a TLS upstream whose fault mode each case sets (trusted by
the gateway: it holds a certificate from the dev CA, as an impersonator who obtained one would);
the regional name stays mapped to the simulator, so after each fault a normal call proves the
gateway still works. Each fault must end in its Tencent error code, within the upstream timeout
plus a margin, with a message that says whether the call may have reached Tencent Cloud.
"""
import os
import tempfile
import threading
import time
import unittest

import cases
import harness
import hostile as H

TIMEOUT_MS = 2000
MAX_RESPONSE = 1024 * 1024
TEN_MB = 10 * 1024 * 1024
MAY_HAVE = "may have"

SEED = b'{"ProxyId": "link-4ftf12sb", "Concurrent": "2", "Bandwidth": "10"}'

# (name, fault mode, accepted codes, words the message must contain)
FAULTS = [
    ("never answers", ("never",), ("InternalError.UpstreamTimeout",), MAY_HAVE),
    ("closes after reading the call", ("close",), ("InternalError.UpstreamFailure",), MAY_HAVE),
    ("garbage instead of HTTP",
     ("raw", b"SSH-2.0-OpenSSH_9.2\r\n" + bytes(range(256)) * 4),
     ("InternalError.UpstreamFailure",), MAY_HAVE),
    ("half a status line, then close", ("raw", b"HTTP/1.1 20"),
     ("InternalError.UpstreamFailure",), MAY_HAVE),
    ("a head, then silence mid-body",
     ("raw_hold", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"Response\":"),
     ("InternalError.UpstreamTimeout",), MAY_HAVE),
    ("a Content-Length that is not a number",
     ("raw", b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n{}"),
     ("InternalError.UpstreamFailure",), MAY_HAVE),
    ("a 200 KB header line",
     ("raw", b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 200_000 + b"\r\nContent-Length: 2\r\n\r\n{}"),
     ("InternalError.UpstreamFailure", "ResponseSizeLimitExceeded"), ""),
    ("a 10 MB answer with Content-Length", ("stream", TEN_MB, b"x" * 65536),
     ("ResponseSizeLimitExceeded",), "1048576"),
    ("a 10 MB chunked answer", ("chunked", TEN_MB, b"x" * 65536),
     ("ResponseSizeLimitExceeded",), "1048576"),
]


class UpstreamFaults(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="tcgw-hostile-certs-")
        certs = harness.make_certs(os.path.join(cls.tmp.name, "certs"))
        cls.mode = ("never",)
        cls.fault = H.FaultUpstream(certs["server_cert"], certs["server_key"],
                                    lambda request: cls.mode)
        try:
            cls.stack = H.Stack(None, certs=certs,
                                routes=[("gaap.tencentcloudapi.com", cls.fault.port)],
                                config={"upstream": {"timeout_ms": TIMEOUT_MS,
                                                     "connect_timeout_ms": 1000,
                                                     "max_response_bytes": MAX_RESPONSE}})
        except Exception:
            cls.fault.stop()
            cls.tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.stack.close()
        finally:
            cls.fault.stop()
            cls.tmp.cleanup()

    def setUp(self):
        self.stack.test = self

    def test_faults(self):
        tally = H.Tally("upstream faults")
        st = self.stack
        try:
            for i, (name, mode, codes, words) in enumerate(FAULTS):
                if st.gave_up():
                    tally.not_run(f[0] for f in FAULTS[i:])
                    self.fail("the gateway stopped answering normal calls: %d faults not run"
                              % (len(FAULTS) - i))
                with self.subTest(fault=name):
                    type(self).mode = mode
                    before = self.fault.count()
                    raw = H.valid_call(action=b"ModifyProxyConfiguration", body=SEED)
                    a = H.exchange(st.port, raw, timeout=TIMEOUT_MS / 1000 + 8, close_wait=0)
                    problems = []
                    err = a.tencent_error() if a.status is not None else None
                    if a.timed_out or a.status is None:
                        problems.append("no answer within %.0f s" % (TIMEOUT_MS / 1000 + 8))
                    elif err is None:
                        problems.append("HTTP %d without a Tencent error: %r" % (a.status,
                                                                                 a.body[:80]))
                    else:
                        if err[0] not in codes:
                            problems.append("code %s, expected %s" % (err[0], " or ".join(codes)))
                        if words not in err[1]:
                            problems.append("the message does not say %r: %r" % (words, err[1]))
                    if self.fault.count() == before:
                        problems.append("the call never reached the faulty upstream")
                    if a.elapsed > TIMEOUT_MS / 1000 + 3:
                        problems.append("took %.1f s, over upstream.timeout_ms + 3 s" % a.elapsed)
                    caught = st.catcher.take()
                    if caught:
                        problems.append("the gateway connected to a stray upstream: %s" % caught)
                    alive = st.alive_problem(host=cases.REGION_HOST)
                    if alive:
                        problems.append(alive)
                    tally.add(name, "%s in %.2f s" % (H.outcome(a), a.elapsed), problems)
                    self.assertEqual(problems, [], "%s: %s" % (name, a.describe()))
        finally:
            tally.print()

    def test_concurrent_faults_do_not_hold_the_gateway(self):
        """Eight calls to an upstream that never answers, at once: a normal call to the other
        upstream is answered at once meanwhile, and every faulty call ends in a timeout."""
        type(self).mode = ("never",)
        results = []
        lock = threading.Lock()

        def one():
            a = H.exchange(self.stack.port, H.valid_call(), timeout=TIMEOUT_MS / 1000 + 8,
                           close_wait=0)
            with lock:
                results.append(a)
        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        started = time.monotonic()
        self.assertIsNone(self.stack.alive_problem(host=cases.REGION_HOST))
        normal = time.monotonic() - started
        for t in threads:
            t.join(TIMEOUT_MS / 1000 + 10)
        codes = [(a.tencent_error() or ("none",))[0] for a in results]
        H.report("concurrent faults", ["normal call while 8 calls hung upstream: %.3f s" % normal,
                                       "faulty calls ended with %s" % codes])
        self.assertLess(normal, 1.5)
        self.assertEqual(codes, ["InternalError.UpstreamTimeout"] * 8)
        self.assertEqual(self.stack.catcher.take(), [])



class CallsInFlight(unittest.TestCase):
    """max_calls_in_flight bounds the calls waiting for Tencent Cloud: a caller (or a stuck
    upstream) cannot pile up unbounded transfers; the calls over the bound are refused, not
    sent."""

    LIMIT = 4
    CALLS = 10

    def test_calls_over_the_bound_are_refused_not_sent(self):
        tmp = tempfile.TemporaryDirectory(prefix="tcgw-hostile-certs-")
        self.addCleanup(tmp.cleanup)
        certs = harness.make_certs(os.path.join(tmp.name, "certs"))
        up = H.FaultUpstream(certs["server_cert"], certs["server_key"], lambda r: ("never",))
        self.addCleanup(up.stop)
        st = H.Stack(self, certs=certs, routes=[("gaap.tencentcloudapi.com", up.port)],
                     config={"max_calls_in_flight": self.LIMIT,
                             "upstream": {"timeout_ms": TIMEOUT_MS}})
        self.addCleanup(st.close)
        results = []
        lock = threading.Lock()

        def one():
            a = H.exchange(st.port, H.valid_call(), timeout=TIMEOUT_MS / 1000 + 8, close_wait=0)
            with lock:
                results.append(a)
        threads = [threading.Thread(target=one) for _ in range(self.CALLS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT_MS / 1000 + 10)
        codes = sorted((a.tencent_error() or ("none", "", ""))[0] for a in results)
        refused = [a for a in results
                   if (a.tencent_error() or ("",))[0] == "RequestLimitExceeded"]
        H.report("calls in flight", ["max_calls_in_flight %d, %d calls at once to an upstream "
                                     "that never answers" % (self.LIMIT, self.CALLS),
                                     "upstream received %d; answers: %s" % (up.count(), codes)])
        self.assertLessEqual(up.count(), self.LIMIT)
        self.assertEqual(len(refused), self.CALLS - up.count(), codes)
        for a in refused:
            self.assertIn("not sent", a.tencent_error()[1])
        self.assertEqual(codes.count("InternalError.UpstreamTimeout"), up.count(), codes)
        self.assertIsNone(st.alive_problem(host=cases.REGION_HOST))


if __name__ == "__main__":
    unittest.main()
