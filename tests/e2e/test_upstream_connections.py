"""Connections to the upstream under many calls at once: over HTTP/2 a few connections carry
them all (libcurl alone opens one per call past a full connection); over HTTP/1.1 the gateway
opens as many as calls need, up to upstream.max_host_connections."""
import os
import shutil
import subprocess
import threading
import time
import unittest

import gw

HERE = os.path.dirname(os.path.abspath(__file__))
MODIFY = {"ProxyId": "link-m9t4yho9", "Bandwidth": 10, "Concurrent": 2}


def setUpModule():
    """Fails (does not skip) when node is missing: CI installs it (bash dev.sh test)."""
    if shutil.which("node") is None:
        raise AssertionError("node is not installed; bash dev.sh test installs it")


class H2Upstream:
    """tests/e2e/h2_upstream.js: counts the connections made to it."""

    def __init__(self, cert, key, delay_ms):
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "h2_upstream.js"), cert, key,
                                      str(delay_ms)], stdout=subprocess.PIPE, text=True)
        self.sessions = 0
        line = self.proc.stdout.readline()
        if not line.startswith("port "):
            self.proc.kill()
            raise AssertionError("the HTTP/2 upstream did not start: %r" % line)
        self.port = int(line.split()[1])
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("session "):
                self.sessions = int(line.split()[1])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def call_at_once(g, n):
    """n calls at once, each on its own connection; returns their answers."""
    answers = [None] * n
    start = threading.Barrier(n)

    def one(i):
        start.wait()
        answers[i] = g.call("ModifyProxyConfiguration", MODIFY)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return answers


class UpstreamConnectionsTest(gw.GatewaysCase):
    CALLS = 300

    def test_http2_calls_share_a_few_connections(self):
        up = H2Upstream(self.sim.certs["server_cert"], self.sim.certs["server_key"], 300)
        self.addCleanup(up.stop)
        # One worker, 400 calls in flight at most: enough connections for 400 calls of 100
        # streams each is five.
        g = self.gateway(upstream_port=up.port, extra_config={
            "threads": 1, "max_calls_in_flight": 400, "max_connections_per_address": 1000,
            "upstream": {"max_host_connections": 1000}})
        answers = call_at_once(g, self.CALLS)
        for status, answer in answers:
            self.assertEqual(status, 200, answer)
            self.assertIsNone(gw.error_code(answer), answer)
            self.assertTrue(answer["Response"]["RequestId"].startswith("h2-"), answer)
        self.assertLessEqual(up.sessions, 5, "%d connections for %d calls over HTTP/2" % (
            up.sessions, self.CALLS))

    def test_http1_calls_get_a_connection_each(self):
        def slow(request):
            time.sleep(0.3)
            return 200, "OK", {"Content-Type": "application/json"}, \
                b'{"Response":{"RequestId":"h1"}}'

        up = self.scripted(slow)
        g = self.gateway(upstream_port=up.port, extra_config={
            "threads": 1, "max_calls_in_flight": 400, "max_connections_per_address": 1000,
            "upstream": {"max_host_connections": 1000}})
        g.call("ModifyProxyConfiguration", MODIFY)  # the first answer: HTTP/1.1
        calls = 60
        answers = call_at_once(g, calls)
        for status, answer in answers:
            self.assertEqual((status, answer["Response"].get("RequestId")), (200, "h1"), answer)
        # One call per connection: far more than HTTP/2's five, as many as the calls at once.
        self.assertGreaterEqual(up.connections, calls - 5)


if __name__ == "__main__":
    unittest.main()
