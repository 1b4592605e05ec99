"""ClientToken idempotency across replicas: with limits.backend "redis", two gateways sharing a
real redis-server honour a token once between them. A repeat sent to the OTHER gateway while the
first call is in flight gets the first call's answer (the upstream sees one request); a repeat
after completion is replayed by the other gateway; the same token with other parameters is
FailedOperation.DuplicatedRequest there; a first call without a definite answer frees its token
on every replica; and with Redis down each gateway goes on with its own table (logged).

Run: cd tests/e2e && TCGW_BIN=... TCGW_SIM_BIN=... python3 -m unittest -v test_idempotency_redis
"""
import hashlib
import json
import os
import shutil
import socket
import threading
import time
import unittest

import gw
from test_idempotency import MODIFY, Counting, body_of, concurrently
from test_limits import Redis, wait_for_log

ACTION = "ModifyProxyConfiguration"


def redis_command(port, *args):
    """One command to redis-server in RESP; returns the first line of its reply."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(out)
        return s.recv(65536).split(b"\r\n")[0]


def record_key(token, caller="local", service="gaap", action=ACTION, prefix="tcgw"):
    """The key gateway/idem/shared.h names: BLAKE2b-256 of the names and token, NUL after each."""
    h = hashlib.blake2b(digest_size=32)
    for part in (caller, service, action, token):
        h.update(part.encode() + b"\0")
    return "%s:idem:%s:%s:%s:%s" % (prefix, caller, service, action, h.hexdigest())


def params_hash(params):
    """The hash of the parameters' canonical JSON (compact, members sorted), as the gateway's."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(text, digest_size=32).hexdigest()


@unittest.skipUnless(shutil.which("redis-server"), "redis-server is not installed")
class SharedIdempotency(gw.GatewaysCase):

    def setUp(self):
        super().setUp()
        self.redis = Redis(os.path.join(self.dir, "redis")).start()
        self.addCleanup(self.redis.stop)

    def config(self, window=60):
        return {
            "threads": 2,
            "idempotency": {"replay_window_s": window},
            "limits": {"default_rate": 1000, "backend": "redis",
                       # Generous for a sanitized build on a busy machine.
                       "redis": {"address": "127.0.0.1", "port": self.redis.port,
                                 "replicas": 2, "timeout_ms": 250}},
        }

    def pair(self, up, **kw):
        out = []
        for _ in range(2):
            g = self.gateway(upstream_port=up.port, extra_config=self.config(**kw))
            wait_for_log(g, r"event=limits_backend backend=redis state=shared")
            out.append(g)
        return out

    def test_in_flight_repeat_on_the_other_gateway(self):
        up = self.scripted(Counting(delay=1.5))
        g1, g2 = self.pair(up)
        body = dict(MODIFY, ClientToken="tok-across")

        def call(i):
            if i > 0:
                time.sleep(0.3)  # the first is in flight on g1
            return (g1 if i % 2 == 0 else g2).call(ACTION, body)[1]
        answers = concurrently(4, call)
        ids = [a["Response"].get("RequestId") for a in answers]
        self.assertEqual(set(ids), {"upstream-1"}, answers)
        self.assertEqual(len(up.requests), 1)  # one upstream call for both gateways
        self.assertEqual(body_of(up.requests[0])["ClientToken"], "tok-across")
        for g in (g1, g2):
            self.assertNotIn("event=idempotency_backend", g.read_log())

    def test_replay_on_the_other_gateway(self):
        up = self.scripted(Counting())
        g1, g2 = self.pair(up)
        body = dict(MODIFY, ClientToken="tok-replay-across")
        _, first = g1.call(ACTION, body)
        _, again = g2.call(ACTION, body)
        self.assertEqual(first, again)
        _, third = g2.call(ACTION, body)  # and again, from g2's own table or Redis
        self.assertEqual(first, third)
        self.assertEqual(len(up.requests), 1)
        _, other = g2.call(ACTION, dict(MODIFY, ClientToken="tok-other"))
        self.assertEqual(other["Response"]["RequestId"], "upstream-2")

    def test_replay_window_ends_across(self):
        up = self.scripted(Counting())
        g1, g2 = self.pair(up, window=1)
        body = dict(MODIFY, ClientToken="tok-window-across")
        g1.call(ACTION, body)
        time.sleep(1.3)
        _, later = g2.call(ACTION, body)
        self.assertEqual(later["Response"]["RequestId"], "upstream-2")

    def test_other_parameters_refused_on_the_other_gateway(self):
        up = self.scripted(Counting(delay=1.0))
        g1, g2 = self.pair(up)
        body = dict(MODIFY, ClientToken="tok-dup-across")
        other = dict(MODIFY, Bandwidth=20, ClientToken="tok-dup-across")

        def call(i):
            if i == 0:
                return g1.call(ACTION, body)[1]
            time.sleep(0.3)
            return g2.call(ACTION, other)[1]
        first, in_flight = concurrently(2, call)
        self.assertEqual(first["Response"]["RequestId"], "upstream-1")
        self.assertEqual(gw.error_code(in_flight), "FailedOperation.DuplicatedRequest", in_flight)
        # After completion too, on either gateway.
        for g in (g2, g1):
            _, after = g.call(ACTION, other)
            self.assertEqual(gw.error_code(after), "FailedOperation.DuplicatedRequest", after)
        self.assertEqual(len(up.requests), 1)

    def test_failed_first_call_frees_the_token_everywhere(self):
        answers = [(503, "Service Unavailable", {}, b"busy")]
        counting = Counting()

        def script(request):
            return answers.pop(0) if answers else counting(request)
        up = self.scripted(script)
        g1, g2 = self.pair(up)
        body = dict(MODIFY, ClientToken="tok-5xx-across")
        status, _, data = g1.request("POST", "/", {
            "Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
            "X-TC-Action": ACTION, "X-TC-Version": "2018-05-29"}, json.dumps(body).encode())
        self.assertEqual((status, data), (503, b"busy"))
        _, again = g2.call(ACTION, body)  # sent again, from the other gateway
        self.assertEqual(again["Response"]["RequestId"], "upstream-1", again)
        _, third = g1.call(ACTION, body)  # then replayed to the first
        self.assertEqual(third, again)
        self.assertEqual(len(up.requests), 2)

    def test_waiting_repeat_answers_by_its_deadline(self):
        up = self.scripted(Counting(delay=2.0))
        g1, g2 = self.pair(up)
        body = dict(MODIFY, ClientToken="tok-slow-across")

        def call(i):
            if i == 0:
                return g1.call(ACTION, body)[1], 0
            time.sleep(0.3)
            t0 = time.time()
            answer = g2.call(ACTION, body, extra_headers={"X-Tcgw-Timeout-Ms": "400"})[1]
            return answer, time.time() - t0
        (first, _), (second, took) = concurrently(2, call)
        self.assertEqual(first["Response"]["RequestId"], "upstream-1")
        self.assertEqual(gw.error_code(second), "InternalError.UpstreamTimeout", second)
        self.assertIn("same ClientToken", second["Response"]["Error"]["Message"])
        self.assertLess(took, 1.2)
        self.assertEqual(len(up.requests), 1)

    def test_lease_of_a_lost_first_call_ends(self):
        # A first call whose gateway died: its record stays pending until its lease ends, then
        # the repeat that was waiting for it claims the token and is sent.
        up = self.scripted(Counting())
        g1, _ = self.pair(up)
        body = dict(MODIFY, ClientToken="tok-lost")
        key = record_key("tok-lost")
        self.assertEqual(redis_command(self.redis.port, "HSET", key, "s", "pending",
                                       "p", params_hash(body), "o", "gone"), b":3")
        self.assertEqual(redis_command(self.redis.port, "PEXPIRE", key, 1000), b":1")
        t0 = time.time()
        _, answer = g1.call(ACTION, body)
        took = time.time() - t0
        self.assertEqual(answer["Response"]["RequestId"], "upstream-1", answer)
        self.assertGreater(took, 0.7)
        self.assertEqual(len(up.requests), 1)
        # The record is this call's now, done: the stale owner can no longer change it. The
        # gateway writes "done" to Redis as it answers, without waiting: give it a moment.
        deadline = time.time() + 2.0
        state = redis_command(self.redis.port, "HGET", key, "s")
        while state != b"$4" and time.time() < deadline:
            time.sleep(0.02)
            state = redis_command(self.redis.port, "HGET", key, "s")
        self.assertEqual(state, b"$4")

    def test_stop_while_polling(self):
        # A repeat polling a record in flight elsewhere is answered when its gateway stops, and
        # the gateway exits cleanly (sanitizers included).
        up = self.scripted(Counting())
        g1, _ = self.pair(up)
        body = dict(MODIFY, ClientToken="tok-stop")
        key = record_key("tok-stop")
        redis_command(self.redis.port, "HSET", key, "s", "pending", "p", params_hash(body),
                      "o", "elsewhere")
        redis_command(self.redis.port, "PEXPIRE", key, 60000)
        result = {}

        def call():
            result["answer"] = g1.call(ACTION, body,
                                       extra_headers={"X-Tcgw-Timeout-Ms": "5000"})[1]
        t = threading.Thread(target=call)
        t.start()
        time.sleep(0.5)
        t0 = time.time()
        self.assertEqual(g1.stop(), 0)
        t.join()
        self.assertLess(time.time() - t0, 10)
        self.assertIn(gw.error_code(result["answer"]),
                      ("ServiceUnavailable", "InternalError.UpstreamTimeout"), result)
        self.assertEqual(len(up.requests), 0)

    def test_record_written_elsewhere_is_replayed(self):
        # The record's format is the contract between replicas (of different builds, too).
        up = self.scripted(Counting())
        g1, _ = self.pair(up)
        body = dict(MODIFY, ClientToken="tok-elsewhere")
        answer = b'{"Response":{"RequestId":"from-elsewhere"}}'
        redis_command(self.redis.port, "HSET", record_key("tok-elsewhere"), "s", "done",
                      "p", params_hash(body), "o", "x", "st", "200", "b", answer)
        _, got = g1.call(ACTION, body)
        self.assertEqual(got["Response"]["RequestId"], "from-elsewhere", got)
        _, dup = g1.call(ACTION, dict(body, Bandwidth=99))
        self.assertEqual(gw.error_code(dup), "FailedOperation.DuplicatedRequest", dup)
        self.assertEqual(len(up.requests), 0)

    def test_large_answer_not_replayed_across(self):
        big = "x" * (70 * 1024)

        def script(request):
            n = len(up.requests)
            return 200, "OK", {"Content-Type": "application/json"}, json.dumps(
                {"Response": {"RequestId": "upstream-%d" % n, "Pad": big}}).encode()
        up = self.scripted(script)
        g1, g2 = self.pair(up)
        body = dict(MODIFY, ClientToken="tok-big")
        _, first = g1.call(ACTION, body)
        self.assertEqual(first["Response"]["Pad"], big)
        _, other = g2.call(ACTION, body)  # over 64 KiB: not kept in Redis, sent again
        self.assertEqual(len(up.requests), 2)
        self.assertNotEqual(other["Response"]["RequestId"], first["Response"]["RequestId"])
        _, local = g1.call(ACTION, body)  # the first gateway still replays its own
        self.assertEqual(local, first)
        self.assertEqual(len(up.requests), 2)

    def test_redis_down_each_gateway_goes_on_alone(self):
        up = self.scripted(Counting())
        g1, g2 = self.pair(up)
        self.redis.stop()
        for g in (g1, g2):
            wait_for_log(g, r"event=limits_backend backend=redis state=fallback")
        body = dict(MODIFY, ClientToken="tok-down")
        _, first = g1.call(ACTION, body)
        self.assertNotIn("Error", first["Response"], first)
        _, again = g1.call(ACTION, body)  # the local table still replays
        self.assertEqual(first, again)
        _, dup = g1.call(ACTION, dict(body, Bandwidth=30))
        self.assertEqual(gw.error_code(dup), "FailedOperation.DuplicatedRequest", dup)
        self.assertEqual(len(up.requests), 1)
        log = g1.read_log()
        self.assertRegex(log, r"event=idempotency_backend backend=redis state=fallback")
        self.assertEqual(log.count("event=idempotency_backend"), 1, log)  # once


if __name__ == "__main__":
    unittest.main()
