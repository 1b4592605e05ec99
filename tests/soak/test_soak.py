"""A bounded soak: steady load on loopback through the gateway to the simulator, while the
gateway's VmRSS and open file descriptors are sampled every second.

Several client threads keep one kept-alive connection each and send a mix of valid calls
(forwarded and answered by the simulator) and calls the gateway refuses (each with its exact
code); one more thread makes faults on fresh connections: a client that disconnects mid-body,
one that leaves before its forwarded call is answered, garbage bytes, a partial head, a
smuggling attempt. Every answer is checked: a valid call that fails or a refusal with the wrong
code is an error.

After a warm-up (the first 25%), RSS must be flat (end minus warm-up under RSS_BOUND_MIB) and the
fd count must not grow; after the load, with every client gone, no caller connection may remain
and the fds must fall back to the idle count plus the upstream connections libcurl keeps for
reuse (counted from /proc/net/tcp).

Environment: TCGW_SOAK_SECONDS (20; e.g. 300 for a manual run), TCGW_SOAK_CLIENTS (4).
"""
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hostile"))

import hostile as H  # noqa: E402

SECONDS = max(4.0, H.env_float("TCGW_SOAK_SECONDS", 20.0))
CLIENTS = max(1, H.env_int("TCGW_SOAK_CLIENTS", 4))
WARM_FRACTION = 0.25
# Flat means: after warm-up every call's memory is freed when it completes, the upstream
# connection cache is bounded (as many connections as calls at once) and libmicrohttpd's
# per-connection pools are fixed, so what may still grow is allocator fragmentation and the
# sanitizer's bookkeeping: a few MiB. A leak of even 100 bytes per call exceeds 8 MiB within a
# 20 s run at the rates reached here (about 100k calls).
RSS_BOUND_MIB = 8
# Transient connections (faults, reconnects) at the moment of a sample.
FD_SLACK = 6
MAX_BODY = 65536

BASE = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
        "X-TC-Version": "2018-05-29"}
SEED = b'{"ProxyId": "link-4ftf12sb", "Concurrent": "2", "Bandwidth": "10"}'

# (weight, kind, action, body, expected Tencent code: None means forwarded and answered)
MIX = [
    (40, "valid", "DescribeProxies", b'{"Limit": 1}', None),
    (10, "valid", "ModifyProxyConfiguration", SEED, None),
    (10, "valid", "DescribeAccessRegionsByDestRegion", b'{"DestRegion": "Hongkong"}', None),
    (8, "refused", "DescribeProxies", b'{"Bogus": 1}', "UnknownParameter"),
    (8, "refused", "DescribeProxies", b'{"Limit": ', "InvalidRequest"),
    (8, "refused", "DescribeProxies", b'{"Limit": 101}', "InvalidParameterValue"),
    (6, "refused", "ModifyProxyConfiguration", b'{"ProxyId": "link-4ftf12sb"}',
     "MissingParameter"),
    (4, "refused", "DescribeProxies", b'{"Limit": 1, "Limit": 2}', "InvalidRequest"),
    (4, "refused", "CreateProxy", b"{}", "InvalidAction"),
    (2, "refused", "DescribeProxies", b'{"X": "' + b"a" * (MAX_BODY + 100) + b'"}',
     "RequestSizeLimitExceeded"),
]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.unexpected = []

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def bad(self, what):
        with self.lock:
            self.counts["unexpected"] = self.counts.get("unexpected", 0) + 1
            if len(self.unexpected) < 10:
                self.unexpected.append(what)


def client(port, seed, stop, stats):
    rng = random.Random(seed)
    weights = [m[0] for m in MIX]
    conn = None
    while not stop.is_set():
        _, kind, action, body, expect = rng.choices(MIX, weights)[0]
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            stats.add("connections opened")
        try:
            conn.request("POST", "/", body=body, headers=dict(BASE, **{"X-TC-Action": action}))
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            stats.bad("%s %s: %r" % (kind, action, e))
            conn.close()
            conn = None
            continue
        try:
            answer = json.loads(data)
            code = answer["Response"].get("Error", {}).get("Code")
        except (ValueError, KeyError, AttributeError):
            stats.bad("%s %s: HTTP %d %r" % (kind, action, resp.status, data[:100]))
            continue
        if resp.status == 200 and code == expect:
            stats.add(kind)
        elif expect is None and code is not None and \
                resp.getheader("X-Tcgw-Request-Id") != answer["Response"].get("RequestId"):
            stats.add("valid, refused by the simulator")  # its answer, passed on unchanged
        else:
            stats.bad("%s %s: HTTP %d %s, expected %s" % (kind, action, resp.status, code,
                                                          expect or "an answer"))
        if (resp.getheader("Connection") or "").lower() == "close":
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


def faults(port, seed, stop, stats):
    rng = random.Random(seed)
    call = H.valid_call()
    kinds = [
        ("disconnect mid-body", H.head(H.call_lines(length=1000)) + b'{"Limit":', False),
        ("leave before the answer", call, False),
        ("garbage bytes", bytes(rng.randrange(256) for _ in range(300)), False),
        ("partial head", call[:40], False),
        ("two Content-Length headers",
         H.head(H.call_lines(length=None, extra=[b"Content-Length: 12", b"Content-Length: 5"]))
         + H.VALID_BODY, True),
    ]
    while not stop.is_set():
        name, data, read = kinds[rng.randrange(len(kinds))]
        try:
            s = H.connect(port, timeout=5)
            try:
                s.sendall(data)
                if read:
                    H.read_answer(s, H.RawAnswer(), timeout=5, close_wait=0)
            finally:
                s.close()
            stats.add("fault: " + name)
        except OSError as e:
            stats.add("fault: %s (%s)" % (name, type(e).__name__))
        stop.wait(0.01)


class Soak(unittest.TestCase):

    def test_steady_load(self):
        asan = os.environ.get("ASAN_OPTIONS", "")
        # A small sanitizer quarantine: the default keeps up to 256 MiB of freed memory
        # resident, which would read as growth; 4 MiB fills within the warm-up.
        st = H.Stack(self, config={"max_body_bytes": MAX_BODY},
                     env={"ASAN_OPTIONS": (asan + ":" if asan else "") + "quarantine_size_mb=4"})
        self.addCleanup(st.close)
        pid = st.pid()
        st.alive()
        time.sleep(0.5)
        idle_rss, idle_fds = H.rss_kib(pid), H.fd_count(pid)

        stop = threading.Event()
        stats = Stats()
        threads = [threading.Thread(target=client, args=(st.port, i, stop, stats))
                   for i in range(CLIENTS)]
        threads.append(threading.Thread(target=faults, args=(st.port, 99, stop, stats)))
        samples = []  # (seconds since start, rss KiB, fds)
        started = time.monotonic()
        for t in threads:
            t.start()
        try:
            while time.monotonic() - started < SECONDS:
                time.sleep(1.0)
                if st.gw.proc.poll() is not None:
                    break
                samples.append((time.monotonic() - started, H.rss_kib(pid), H.fd_count(pid)))
                st.sim.clear_records()  # keeps the simulator's record file small on long runs
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        ran = time.monotonic() - started
        self.assertIsNone(st.gw.proc.poll(), "the gateway died:\n" + H.tail(st.gw))

        time.sleep(2.0)  # every client gone: only the upstream connection cache remains
        quiet_rss, quiet_fds = H.rss_kib(pid), H.fd_count(pid)
        sockets = H.tcp_sockets(pid)
        callers_left = [s for s in sockets if s[0] == st.port and s[2] != "LISTEN"]
        upstream_kept = [s for s in sockets if s[1] == st.sim.port]
        alive = st.alive_problem()
        caught = st.catcher.take()

        warm_at = SECONDS * WARM_FRACTION
        warm = [s for s in samples if s[0] >= warm_at][:3]
        end = samples[-3:]
        self.assertTrue(warm and end, "too few samples: %r" % samples)
        warm_rss = statistics.median(s[1] for s in warm)
        end_rss = statistics.median(s[1] for s in end)
        warm_fds = max(s[2] for s in warm)
        end_fds = max(s[2] for s in end)
        calls = sum(v for k, v in stats.counts.items() if not k.startswith(("fault",
                                                                             "connections")))
        H.report("soak: %.0f s, %d clients + 1 fault thread" % (ran, CLIENTS), [
            "calls answered or failed: %d (%.0f/s)" % (calls, calls / ran),
            "by kind: %s" % json.dumps(stats.counts, sort_keys=True),
            "VmRSS idle %.1f MiB, start %.1f, warm (%.0f s) %.1f, end %.1f, max %.1f, "
            "after %.1f" % (
                H.mib(idle_rss), H.mib(samples[0][1]), warm_at, H.mib(warm_rss), H.mib(end_rss),
                H.mib(max(s[1] for s in samples)), H.mib(quiet_rss)),
            "fds idle %d, start %d, warm %d, end %d, max %d, after %d (%d caller connections "
            "still open, %d upstream connections kept for reuse)" % (
                idle_fds, samples[0][2], warm_fds, end_fds, max(s[2] for s in samples),
                quiet_fds, len(callers_left), len(upstream_kept)),
            "samples (s, RSS MiB, fds): %s" % " ".join(
                "%.0f:%.1f:%d" % (t, H.mib(r), f) for t, r, f in samples),
        ] + ["unexpected: %s" % u for u in stats.unexpected])

        problems = []
        if stats.counts.get("unexpected"):
            problems.append("%d unexpected answers or connection errors" %
                            stats.counts["unexpected"])
        if not stats.counts.get("valid"):
            problems.append("no valid call was answered")
        if end_rss - warm_rss > RSS_BOUND_MIB * 1024:
            problems.append("VmRSS grew %.1f MiB after warm-up (bound %d MiB)" % (
                H.mib(end_rss - warm_rss), RSS_BOUND_MIB))
        if end_fds > warm_fds + FD_SLACK:
            problems.append("open fds grew from %d to %d under the same load" % (warm_fds,
                                                                                end_fds))
        if callers_left:
            problems.append("%d caller connections still open 2 s after every client left: %s"
                            % (len(callers_left), sorted(set(c[2] for c in callers_left))))
        if quiet_fds - len(upstream_kept) > idle_fds + 2:
            problems.append("%d fds open with every client gone (%d of them upstream "
                            "connections kept for reuse), idle was %d: leaked?" % (
                                quiet_fds, len(upstream_kept), idle_fds))
        if alive:
            problems.append(alive)
        if caught:
            problems.append("stray upstream connection: %s" % caught)
        self.assertEqual(problems, [], H.tail(st.gw))


if __name__ == "__main__":
    unittest.main()
