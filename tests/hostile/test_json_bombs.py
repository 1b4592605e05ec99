"""Hostile corpus, category b: JSON bombs in the body of an otherwise valid call.

Each case in cases.JSON_CASES must be answered promptly (well within the read timeout: no
quadratic or exponential work) with its Tencent error code in Tencent's format, HTTP 200 as for
every refusal (README, Errors); nothing may reach the simulator, and the gateway must answer a
normal call afterwards (it did not crash or exhaust its stack).
"""
import unittest

import cases
import hostile as H


class JsonBombs(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.stack = H.Stack(None)

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def setUp(self):
        self.stack.test = self
        self.stack.sim.clear_records()

    def test_corpus(self):
        tally = H.Tally("JSON bombs")
        try:
            for i, case in enumerate(cases.JSON_CASES):
                if self.stack.gave_up():
                    tally.not_run(c["name"] for c in cases.JSON_CASES[i:])
                    self.fail("the gateway stopped answering normal calls: %d cases not run"
                              % (len(cases.JSON_CASES) - i))
                with self.subTest(case=case["name"]):
                    action = case.get("action", "DescribeProxies").encode()
                    raw = H.valid_call(body=case["body"], action=action)
                    a = H.exchange(self.stack.port, raw, close_wait=0)
                    problems = []
                    if a.timed_out or a.status is None:
                        problems.append("no answer within %.0f s" % H.READ_TIMEOUT)
                    else:
                        err = a.tencent_error()
                        if err is None:
                            problems.append("HTTP %d without a Tencent error" % a.status)
                        elif err[0] not in case["code"]:
                            problems.append("code %s, expected %s" % (
                                err[0], " or ".join(case["code"])))
                        if a.status != 200:
                            problems.append("HTTP %d, expected 200" % a.status)
                    problems += self.stack.after_case_problems()
                    tally.add(case["name"], "%s in %.2f s (%d-byte body)" % (
                        H.outcome(a), a.elapsed, len(case["body"])), problems)
                    self.assertEqual(problems, [], "%s: %s" % (case["name"], a.describe()))
        finally:
            tally.print()


if __name__ == "__main__":
    unittest.main()
