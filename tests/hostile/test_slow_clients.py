"""Hostile corpus, category f: slow and greedy clients.

Slowloris: many connections from 127.0.0.1 each send a partial head one byte every few seconds.
A legitimate call from another address (127.0.0.2) must still be answered promptly, and after
request_timeout_ms (the deadline for receiving a whole request) the gateway closes the slow
connections. max_connections_per_address keeps one address from taking every connection.

Greedy readers: callers that never read a 1 MiB answer make the gateway hold it. With
memory_budget_bytes 8 MiB, once the budget is spent further calls get RequestLimitExceeded
instead of more memory being held; the gateway's VmRSS while they hold is bounded, and falls back
near idle once they disconnect.

Parameters (environment; the defaults run the category in well under 60 s):
  TCGW_HOSTILE_SLOW_CONNECTIONS   slow connections (1024)
  TCGW_HOSTILE_SLOW_INTERVAL      seconds between the bytes of one slow connection (2)
  TCGW_HOSTILE_SLOW_SECONDS       longest the slow connections are kept dripping (20)
  TCGW_HOSTILE_REQUEST_TIMEOUT_MS the gateway's request_timeout_ms (3000)
  TCGW_HOSTILE_PER_ADDRESS        the gateway's max_connections_per_address (128)
  TCGW_HOSTILE_GREEDY_CALLERS     callers that never read (30)
"""
import os
import resource
import select
import tempfile
import time
import unittest

import harness
import hostile as H

SLOW_CONNECTIONS = H.env_int("TCGW_HOSTILE_SLOW_CONNECTIONS", 1024)
SLOW_INTERVAL = H.env_float("TCGW_HOSTILE_SLOW_INTERVAL", 2.0)
SLOW_SECONDS = min(H.env_float("TCGW_HOSTILE_SLOW_SECONDS", 20.0), 600.0)
REQUEST_TIMEOUT_MS = H.env_int("TCGW_HOSTILE_REQUEST_TIMEOUT_MS", 3000)
PER_ADDRESS = H.env_int("TCGW_HOSTILE_PER_ADDRESS", 128)
GREEDY_CALLERS = H.env_int("TCGW_HOSTILE_GREEDY_CALLERS", 30)

# Slack on request_timeout_ms before a slow connection still open counts as a failure: one drip
# interval (the gateway may notice only when a byte arrives) plus a second.
CLOSE_GRACE = SLOW_INTERVAL + 1.0

MIB = 1024 * 1024
BUDGET = 8 * MIB
ANSWER = 1 * MIB
MAX_RESPONSE = 2 * MIB

SLOW_HEAD = H.valid_call()  # dripped one byte at a time: never complete within the test


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise unittest.SkipTest("RLIMIT_NOFILE hard limit %d is below %d" % (hard, need))
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


class SlowConnections:
    """n connections from 127.0.0.1, each dripping SLOW_HEAD one byte per interval."""

    def __init__(self, port, n):
        self.socks = []
        self.sent = {}
        self.open = set()
        self.answers = {}  # fd -> first bytes the gateway sent before closing
        self.refused_at_connect = 0
        for _ in range(n):
            try:
                s = H.connect(port, timeout=5)
            except OSError:
                self.refused_at_connect += 1
                continue
            s.setblocking(False)
            self.socks.append(s)
            self.sent[s.fileno()] = 0
            self.open.add(s.fileno())
        self.by_fd = {s.fileno(): s for s in self.socks}
        self.poller = select.poll()
        for s in self.socks:
            self.poller.register(s, select.POLLIN)

    def reap(self):
        """Notices connections the gateway closed (EOF, reset, or an answer then EOF)."""
        for fd, _ in self.poller.poll(0):
            if fd not in self.open:
                continue
            s = self.by_fd[fd]
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                self.answers[fd] = self.answers.get(fd, b"") + data
                continue
            self.open.discard(fd)
            self.poller.unregister(fd)

    def drip(self):
        for fd in list(self.open):
            s = self.by_fd[fd]
            i = self.sent[fd]
            if i >= len(SLOW_HEAD) - 1:
                continue  # never complete the call
            try:
                s.send(SLOW_HEAD[i:i + 1])
                self.sent[fd] = i + 1
            except BlockingIOError:
                pass
            except OSError:
                self.open.discard(fd)
                self.poller.unregister(fd)

    def answered_statuses(self):
        out = {}
        for data in self.answers.values():
            status = data.split(b" ", 2)[1].decode("latin-1") if data.startswith(b"HTTP/") \
                else "non-HTTP"
            out[status] = out.get(status, 0) + 1
        return out

    def close(self):
        for s in self.socks:
            s.close()


class SlowClients(unittest.TestCase):

    def test_slowloris_does_not_starve_another_address(self):
        raise_fd_limit(2 * SLOW_CONNECTIONS + 512)
        st = H.Stack(self, config={"request_timeout_ms": REQUEST_TIMEOUT_MS,
                                   "max_connections_per_address": PER_ADDRESS})
        self.addCleanup(st.close)
        st.alive()

        started = time.monotonic()
        slow = SlowConnections(st.port, SLOW_CONNECTIONS)
        self.addCleanup(slow.close)
        opened = time.monotonic() - started
        slow.drip()
        time.sleep(min(1.0, SLOW_INTERVAL / 2))
        slow.reap()
        held_at_call = len(slow.open)

        # The legitimate call, from another loopback address.
        call_started = time.monotonic()
        a = H.exchange(st.port, H.valid_call(), source="127.0.0.2", timeout=10, close_wait=0)
        latency = time.monotonic() - call_started
        legit_records, caught = st.forwarded(settle=0)

        # Keep dripping until the deadline closed them all, or the time bound.
        deadline_check = started + opened + REQUEST_TIMEOUT_MS / 1000 + CLOSE_GRACE
        open_at_deadline = None
        next_drip = time.monotonic() + SLOW_INTERVAL
        while time.monotonic() - started < SLOW_SECONDS:
            slow.reap()
            now = time.monotonic()
            if open_at_deadline is None and now >= deadline_check:
                open_at_deadline = len(slow.open)
            if open_at_deadline is not None and not slow.open:
                break
            if now >= next_drip:
                slow.drip()
                next_drip = now + SLOW_INTERVAL
            time.sleep(0.05)
        slow.reap()
        if open_at_deadline is None:
            open_at_deadline = len(slow.open)
        ran = time.monotonic() - started
        open_at_end = len(slow.open)
        rss = H.rss_kib(st.pid())
        alive = st.alive_problem()

        H.report("slowloris", [
            "%d slow connections from 127.0.0.1 opened in %.2f s (%d refused at connect)" % (
                len(slow.socks), opened, slow.refused_at_connect),
            "max_connections_per_address %d, request_timeout_ms %d, one byte every %.1f s" % (
                PER_ADDRESS, REQUEST_TIMEOUT_MS, SLOW_INTERVAL),
            "still open when the legitimate call was made: %d" % held_at_call,
            "legitimate call from 127.0.0.2: %s in %.3f s" % (H.outcome(a), latency),
            "still open %.1f s after request_timeout_ms: %d; at the end (%.1f s): %d" % (
                CLOSE_GRACE, open_at_deadline, ran, open_at_end),
            "answers written to slow connections before closing: %s" % (
                slow.answered_statuses() or "none"),
            "gateway VmRSS %.1f MiB" % H.mib(rss),
        ])
        problems = []
        if a.status != 200 or a.tencent_error() is not None or len(legit_records) != 1:
            problems.append("the legitimate call was not answered: %s (%d forwarded)" % (
                H.outcome(a), len(legit_records)))
        elif latency > 2.0:
            problems.append("the legitimate call took %.2f s" % latency)
        if held_at_call > PER_ADDRESS:
            problems.append("%d connections from one address were held, over "
                            "max_connections_per_address %d" % (held_at_call, PER_ADDRESS))
        if open_at_deadline:
            problems.append("%d slow connections were still open %.1f s after "
                            "request_timeout_ms" % (open_at_deadline, CLOSE_GRACE))
        if caught:
            problems.append("stray upstream connection: %s" % caught)
        if alive:
            problems.append(alive)
        self.assertEqual(problems, [], H.tail(st.gw))

    def test_greedy_readers_hit_the_memory_budget(self):
        tmp = tempfile.TemporaryDirectory(prefix="tcgw-hostile-certs-")
        self.addCleanup(tmp.cleanup)
        certs = harness.make_certs(os.path.join(tmp.name, "certs"))
        answer = H.response_body(ANSWER)
        up = H.FaultUpstream(certs["server_cert"], certs["server_key"],
                             lambda request: ("answer", 200, answer))
        self.addCleanup(up.stop)
        # Without AddressSanitizer's quarantine of freed memory (the Debug build's default keeps
        # up to 256 MiB of it resident), RSS shows what the gateway holds. Ignored by Release.
        asan = os.environ.get("ASAN_OPTIONS", "")
        st = H.Stack(self, certs=certs, routes=[("gaap.tencentcloudapi.com", up.port)],
                     config={"memory_budget_bytes": BUDGET,
                             "upstream": {"max_response_bytes": MAX_RESPONSE}},
                     env={"ASAN_OPTIONS": (asan + ":" if asan else "") + "quarantine_size_mb=0"})
        self.addCleanup(st.close)
        pid = st.pid()
        region = "gaap.ap-guangzhou.tencentcloudapi.com"  # the simulator: small answers

        for _ in range(3):  # warm: three 1 MiB answers read in full, and a normal call
            a = H.exchange(st.port, H.valid_call(), close_wait=0, timeout=10)
            self.assertEqual((a.status, len(a.body)), (200, ANSWER), a.describe())
        st.alive(host=region)
        time.sleep(0.5)
        idle = H.rss_kib(pid)

        # Greedy callers, one at a time: each advertises a small MSS and receive window so the
        # kernel cannot take the 1 MiB answer off the gateway's hands, and never reads.
        greedy, forwarded, refused = [], 0, 0
        for _ in range(GREEDY_CALLERS):
            s = H.connect(st.port, rcvbuf=4096, maxseg=536)
            self.addCleanup(s.close)
            before = up.count()
            s.sendall(H.valid_call())
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if up.count() > before:
                    forwarded += 1
                    time.sleep(0.05)  # the gateway has the answer in a moment
                    break
                if select.select([s], [], [], 0.01)[0]:
                    time.sleep(0.02)
                    if up.count() > before:
                        forwarded += 1
                    else:
                        refused += 1  # answered without reaching the upstream: refused
                    break
            greedy.append(s)
        time.sleep(0.5)
        held = 0
        for _ in range(5):
            held = max(held, H.rss_kib(pid))
            time.sleep(0.1)

        probe = H.exchange(st.port, H.valid_call(host=region.encode()), close_wait=0)
        probe_records, _ = st.forwarded(settle=0.1)

        for s in greedy:
            s.close()  # with unread data: a reset
        recovered = None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            problem = st.alive_problem(host=region)
            if problem is None:
                recovered = time.monotonic() - t0
                break
            time.sleep(0.2)
        time.sleep(1.0)
        after = H.rss_kib(pid)

        held_bound = idle + 3 * BUDGET // 1024
        after_bound = idle + 16 * 1024
        H.report("greedy readers", [
            "memory_budget_bytes %d MiB, answers %d MiB, upstream.max_response_bytes %d MiB" % (
                BUDGET // MIB, ANSWER // MIB, MAX_RESPONSE // MIB),
            "%d callers that never read: %d forwarded (answer held), %d refused" % (
                GREEDY_CALLERS, forwarded, refused),
            "VmRSS idle %.1f MiB, while held %.1f MiB (bound %.1f), after they left %.1f MiB "
            "(bound %.1f)" % (H.mib(idle), H.mib(held), H.mib(held_bound), H.mib(after),
                              H.mib(after_bound)),
            "a call while they held: %s (%d forwarded)" % (H.outcome(probe), len(probe_records)),
            "normal calls again %s after they left" % (
                "%.2f s" % recovered if recovered is not None else "NOT within 10 s"),
        ])
        problems = []
        err = probe.tencent_error() if probe.status is not None else None
        if err is None or err[0] != "RequestLimitExceeded" or probe_records:
            problems.append("a call while the budget was spent got %s (%d forwarded), expected "
                            "RequestLimitExceeded" % (H.outcome(probe), len(probe_records)))
        if held > held_bound:
            problems.append("VmRSS while held %.1f MiB is over idle + 3 x budget (%.1f MiB)" % (
                H.mib(held), H.mib(held_bound)))
        if after > after_bound:
            problems.append("VmRSS after they left %.1f MiB is over idle + 16 MiB (%.1f)" % (
                H.mib(after), H.mib(after_bound)))
        if recovered is None:
            problems.append("normal calls were not answered again within 10 s")
        self.assertEqual(problems, [], H.tail(st.gw))


if __name__ == "__main__":
    unittest.main()
