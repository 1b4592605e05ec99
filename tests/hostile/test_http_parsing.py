"""Hostile corpus, category a: HTTP request smuggling and lax parsing, sent as raw bytes.

Each case in cases.HTTP_CASES must get a 400 (501 for a Transfer-Encoding the gateway does not
support) with Tencent's error body, or libmicrohttpd's own 4xx for heads it refuses itself; the
connection must be closed after that answer, no second answer may follow (a smuggled call), nothing
may reach the simulator or any other upstream, and the gateway must answer a normal call after it.
A read that times out is a failure (a hang), never waited out.
"""
import unittest

import cases
import hostile as H


class HttpParsing(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.stack = H.Stack(None)

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def setUp(self):
        self.stack.test = self
        self.stack.sim.clear_records()

    def run_case(self, case, tally):
        st = self.stack
        a = H.exchange(st.port, case["raw"], shut_wr=case.get("shut_wr", False))
        problems = H.check_answer(case, a) + st.after_case_problems()
        tally.add(case["name"], H.outcome(a) + " in %.2f s" % a.elapsed, problems)
        self.assertEqual(problems, [], "%s: %s" % (case["name"], a.describe()))

    def test_corpus(self):
        tally = H.Tally("HTTP smuggling and lax parsing")
        try:
            for i, case in enumerate(cases.HTTP_CASES):
                if self.stack.gave_up():
                    tally.not_run(c["name"] for c in cases.HTTP_CASES[i:])
                    self.fail("the gateway stopped answering normal calls: %d cases not run"
                              % (len(cases.HTTP_CASES) - i))
                with self.subTest(case=case["name"]):
                    self.run_case(case, tally)
        finally:
            tally.print()

    def test_pipelined_call_after_a_refused_one_is_not_answered(self):
        """A valid call pipelined behind a malformed one on the same connection: the connection
        is closed after the refusal, so the second call is neither answered nor forwarded."""
        bad = cases.req(cases.lines(extra=[b"Host: evil.com"]))
        a = H.exchange(self.stack.port, bad + H.valid_call())
        problems = H.check_answer(dict(cases.BAD_MHD), a) + self.stack.after_case_problems()
        self.assertEqual(problems, [], a.describe())


if __name__ == "__main__":
    unittest.main()
