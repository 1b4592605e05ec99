"""ClientToken idempotency: a repeat of a ClientToken while the first call is in flight waits
for and gets the first call's answer (one upstream call, across workers); after the first call
ends, its answer is replayed; the same token with other parameters is refused as
FailedOperation.DuplicatedRequest; a call without a token gets a generated one (present upstream,
different per call); tokens are scoped per caller; a waiting repeat still answers by its
deadline; the table is bounded."""
import json
import re
import threading
import time
import unittest

import gw

MODIFY = {"ProxyId": "link-4ftf12sb", "Concurrent": 2, "Bandwidth": 10}
IDEM = {"idempotency": {"replay_window_s": 60}, "threads": 2}
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class Counting:
    """A scripted upstream's script: answers after delay seconds with a RequestId per request."""

    def __init__(self, delay=0.0):
        self.delay = delay
        self.n = 0
        self.lock = threading.Lock()

    def __call__(self, request):
        with self.lock:
            self.n += 1
            n = self.n
        time.sleep(self.delay)
        body = json.dumps({"Response": {"RequestId": "upstream-%d" % n}}).encode()
        return 200, "OK", {"Content-Type": "application/json"}, body


def body_of(request):
    return json.loads(request.partition(b"\r\n\r\n")[2])


def concurrently(n, fn):
    results = [None] * n

    def run(i):
        results[i] = fn(i)
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
        time.sleep(0.02)
    for t in ts:
        t.join()
    return results


class IdempotencyTest(gw.GatewaysCase):
    def test_in_flight_repeats_get_the_first_answer(self):
        up = self.scripted(Counting(delay=1.0))
        g = self.gateway(upstream_port=up.port, extra_config=IDEM)
        body = dict(MODIFY, ClientToken="tok-in-flight")
        answers = concurrently(6, lambda i: g.call("ModifyProxyConfiguration", body)[1])
        ids = {a["Response"].get("RequestId") for a in answers}
        self.assertEqual(ids, {"upstream-1"}, answers)
        self.assertEqual(len(up.requests), 1)  # one upstream call for six
        self.assertEqual(body_of(up.requests[0])["ClientToken"], "tok-in-flight")

    def test_replay_after_completion(self):
        up = self.scripted(Counting())
        g = self.gateway(upstream_port=up.port, extra_config=IDEM)
        body = dict(MODIFY, ClientToken="tok-replay")
        _, first = g.call("ModifyProxyConfiguration", body)
        _, again = g.call("ModifyProxyConfiguration", body)
        self.assertEqual(first, again)
        self.assertEqual(len(up.requests), 1)
        # Another token is another call.
        _, other = g.call("ModifyProxyConfiguration", dict(MODIFY, ClientToken="tok-other"))
        self.assertEqual(other["Response"]["RequestId"], "upstream-2")

    def test_replay_window_ends(self):
        up = self.scripted(Counting())
        g = self.gateway(upstream_port=up.port,
                         extra_config={"idempotency": {"replay_window_s": 1}})
        body = dict(MODIFY, ClientToken="tok-window")
        g.call("ModifyProxyConfiguration", body)
        time.sleep(1.3)
        _, later = g.call("ModifyProxyConfiguration", body)
        self.assertEqual(later["Response"]["RequestId"], "upstream-2")

    def test_same_token_other_parameters_refused(self):
        up = self.scripted(Counting(delay=0.8))
        g = self.gateway(upstream_port=up.port, extra_config=IDEM)
        body = dict(MODIFY, ClientToken="tok-dup")
        other = dict(MODIFY, Bandwidth=20, ClientToken="tok-dup")

        def call(i):
            return g.call("ModifyProxyConfiguration", body if i == 0 else other)[1]
        first, in_flight = concurrently(2, call)
        self.assertEqual(first["Response"]["RequestId"], "upstream-1")
        self.assertEqual(gw.error_code(in_flight), "FailedOperation.DuplicatedRequest", in_flight)
        _, after = g.call("ModifyProxyConfiguration", other)
        self.assertEqual(gw.error_code(after), "FailedOperation.DuplicatedRequest", after)
        self.assertEqual(len(up.requests), 1)

    def test_generated_token_sent_and_differs_per_call(self):
        g = self.gateway(extra_config=IDEM)  # the GAAP simulator
        for _ in range(2):
            status, answer = g.call("ModifyProxyConfiguration", MODIFY)
            self.assertNotIn("Error", answer["Response"], answer)
        tokens = [json.loads(self.sim.record_body_bytes(r))["ClientToken"]
                  for r in self.sim.records()]
        self.assertEqual(len(tokens), 2)
        self.assertNotEqual(tokens[0], tokens[1])
        for t in tokens:
            self.assertRegex(t, r"^[\x21-\x7e]{1,64}$")
        # The rest of the body is the caller's.
        body = json.loads(self.sim.record_body_bytes(self.sim.records()[0]))
        del body["ClientToken"]
        self.assertEqual(body, MODIFY)
        # Reads and actions without ClientToken are untouched.
        g.call("DescribeProxies", {})
        self.assertNotIn("ClientToken",
                         json.loads(self.sim.record_body_bytes(self.sim.records()[-1])))

    def test_off_without_section(self):
        g = self.gateway()
        g.call("ModifyProxyConfiguration", MODIFY)
        self.assertNotIn("ClientToken",
                         json.loads(self.sim.record_body_bytes(self.sim.records()[-1])))

    def test_tokens_scoped_per_caller(self):
        up = self.scripted(Counting())
        g = self.gateway(upstream_port=up.port, extra_config=IDEM)
        out = gw.run_tcgw(["callers", "add", "bot", "--policy", "allow-all", "--config",
                           g.config_path]).stdout.decode()
        token = [w for w in re.split(r"\s+", out) if TOKEN_RE.match(w)][0]
        g.reload()
        body = dict(MODIFY, ClientToken="tok-shared")
        _, as_local = g.call("ModifyProxyConfiguration", body)
        _, as_bot = g.call("ModifyProxyConfiguration", body,
                           extra_headers={"Authorization": "Bearer " + token})
        self.assertEqual(as_local["Response"]["RequestId"], "upstream-1")
        self.assertEqual(as_bot["Response"]["RequestId"], "upstream-2", as_bot)
        # Other parameters under the other caller's token are no conflict either.
        _, bot_other = g.call("ModifyProxyConfiguration", dict(body, Bandwidth=30),
                              extra_headers={"Authorization": "Bearer " + token})
        self.assertEqual(gw.error_code(bot_other), "FailedOperation.DuplicatedRequest")
        self.assertEqual(len(up.requests), 2)

    def test_waiting_repeat_answers_by_its_deadline(self):
        up = self.scripted(Counting(delay=2.0))
        g = self.gateway(upstream_port=up.port, extra_config=IDEM)
        body = dict(MODIFY, ClientToken="tok-slow")

        def call(i):
            t0 = time.time()
            hdr = {} if i == 0 else {"X-Tcgw-Timeout-Ms": "300"}
            answer = g.call("ModifyProxyConfiguration", body, extra_headers=hdr)[1]
            return answer, time.time() - t0
        (first, _), (second, took) = concurrently(2, call)
        self.assertEqual(first["Response"]["RequestId"], "upstream-1")
        self.assertEqual(gw.error_code(second), "InternalError.UpstreamTimeout", second)
        self.assertIn("same ClientToken", second["Response"]["Error"]["Message"])
        self.assertLess(took, 1.0)
        self.assertEqual(len(up.requests), 1)

    def test_not_sent_first_call_frees_its_token(self):
        # Nothing listens on the upstream port: the call is certainly not sent.
        up = self.scripted(Counting())
        port = up.port
        up.stop()
        g = self.gateway(upstream_port=port, extra_config=IDEM)
        body = dict(MODIFY, ClientToken="tok-unsent")
        _, a = g.call("ModifyProxyConfiguration", body)
        self.assertEqual(gw.error_code(a), "InternalError.UpstreamUnreachable", a)
        _, b = g.call("ModifyProxyConfiguration", body)
        self.assertEqual(gw.error_code(b), "InternalError.UpstreamUnreachable", b)
        self.assertNotEqual(a["Response"]["RequestId"], b["Response"]["RequestId"])

    def test_failed_first_call_is_not_replayed(self):
        answers = [(503, "Service Unavailable", {}, b"busy")]
        counting = Counting()

        def script(request):
            return answers.pop(0) if answers else counting(request)
        up = self.scripted(script)
        g = self.gateway(upstream_port=up.port, extra_config=IDEM)  # no retries
        body = dict(MODIFY, ClientToken="tok-5xx")
        status, _, data = g.request("POST", "/", {
            "Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
            "X-TC-Action": "ModifyProxyConfiguration", "X-TC-Version": "2018-05-29"},
            json.dumps(body).encode())
        self.assertEqual((status, data), (503, b"busy"))
        # The repeat is sent again (Tencent's ClientToken makes that safe), then replayed.
        _, again = g.call("ModifyProxyConfiguration", body)
        self.assertEqual(again["Response"]["RequestId"], "upstream-1", again)
        _, third = g.call("ModifyProxyConfiguration", body)
        self.assertEqual(third, again)
        self.assertEqual(len(up.requests), 2)

    def test_generated_token_named_when_the_outcome_is_unknown(self):
        up = self.scripted(lambda request: "close")
        g = self.gateway(upstream_port=up.port, extra_config=IDEM)
        _, answer = g.call("ModifyProxyConfiguration", MODIFY)
        message = answer["Response"]["Error"]["Message"]
        sent = body_of(up.requests[0])["ClientToken"]
        self.assertIn('ClientToken "%s"' % sent, message)
        # Repeating with it reaches Tencent again (the first call did not end with an answer).
        g.call("ModifyProxyConfiguration", dict(MODIFY, ClientToken=sent))
        self.assertEqual(body_of(up.requests[1])["ClientToken"], sent)

    def test_table_is_bounded(self):
        up = self.scripted(Counting())
        g = self.gateway(upstream_port=up.port,
                         extra_config={"idempotency": {"max_entries": 16}})
        for i in range(16):
            _, a = g.call("ModifyProxyConfiguration", dict(MODIFY, ClientToken="t%d" % i))
            self.assertNotIn("Error", a["Response"], a)
        _, full = g.call("ModifyProxyConfiguration", dict(MODIFY, ClientToken="t16"))
        self.assertEqual(gw.error_code(full), "RequestLimitExceeded", full)
        self.assertIn("idempotency.max_entries", full["Response"]["Error"]["Message"])
        # Calls without a token (generated) need no entry.
        _, gen = g.call("ModifyProxyConfiguration", MODIFY)
        self.assertNotIn("Error", gen["Response"], gen)


if __name__ == "__main__":
    unittest.main()
