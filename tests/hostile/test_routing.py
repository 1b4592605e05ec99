"""Hostile corpus, category c: routing and SSRF attempts.

Every case in cases.ROUTING_CASES must be refused with one of its codes and nothing forwarded, or,
where the case allows it, forwarded to exactly the one <service>[.<region>].tencentcloudapi.com
name it states, which the gateway's upstream.connect_to maps to the simulator. Every other host
and port (including evil.com, IP literals and the instance metadata address) is mapped by a
catch-all connect_to entry to a plain TCP listener, the stray catcher: it must never see a
connection. (connect_to rather than upstream.resolve, because resolve maps a name to an address
and cannot redirect a port.)
"""
import unittest

import cases
import hostile as H


class Routing(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.stack = H.Stack(None, extra_sim_hosts=cases.EXTRA_SIM_HOSTS)

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def setUp(self):
        self.stack.test = self
        self.stack.sim.clear_records()

    def judge(self, case, a, records, caught):
        problems = []
        if caught:
            problems.append("the gateway connected to a stray upstream: %s" % caught)
        if a.timed_out or a.status is None:
            return problems + ["no answer within %.0f s" % H.READ_TIMEOUT]
        err = a.tencent_error()
        hosts = [r.get("host") for r in records]
        if records:
            if case["forward"] is None:
                problems.append("forwarded to %s: it must be refused" % hosts)
            elif hosts != [case["forward"]]:
                problems.append("forwarded to %s, only %s is acceptable" % (hosts,
                                                                            case["forward"]))
            elif err is not None and a.header("x-tcgw-request-id") == err[2]:
                problems.append("forwarded, yet the gateway answered %s itself" % err[0])
        else:
            if err is None:
                problems.append("HTTP %d without a Tencent error and nothing forwarded" % a.status)
            elif err[0] not in case["refuse"]:
                problems.append("code %s, expected %s" % (err[0], " or ".join(
                    case["refuse"] + (("forwarding to " + case["forward"],)
                                      if case["forward"] else ()))))
        return problems

    def test_corpus(self):
        tally = H.Tally("routing and SSRF")
        st = self.stack
        try:
            for i, case in enumerate(cases.ROUTING_CASES):
                if st.gave_up():
                    tally.not_run(c["name"] for c in cases.ROUTING_CASES[i:])
                    self.fail("the gateway stopped answering normal calls: %d cases not run"
                              % (len(cases.ROUTING_CASES) - i))
                with self.subTest(case=case["name"]):
                    a = H.exchange(st.port, case["raw"], close_wait=0)
                    records, caught = st.forwarded()
                    problems = self.judge(case, a, records, caught)
                    alive = st.alive_problem()
                    if alive:
                        problems.append(alive)
                    what = H.outcome(a)
                    if records:
                        what += ", forwarded to %s" % [r.get("host") for r in records]
                    tally.add(case["name"], what, problems)
                    self.assertEqual(problems, [], "%s: %s" % (case["name"], a.describe()))
        finally:
            tally.print()
        self.assertEqual(st.catcher.take(), [], "the stray catcher saw a connection")

    def test_catcher_is_wired(self):
        """The catch-all really catches, so an empty catcher means something. The gateway does
        not check regions against a list, so a well-formed region that connect_to does not map
        to the simulator is forwarded, and must land in the catcher."""
        name = "gaap.ap-shanghai.tencentcloudapi.com"
        a = H.exchange(self.stack.port, H.valid_call(host=name.encode()), timeout=10,
                       close_wait=0)
        code = (a.tencent_error() or ("none",))[0]
        records, caught = self.stack.forwarded(settle=0.5)
        self.assertEqual(records, [])
        if not caught and code in ("InvalidParameterValue", "InvalidRequest"):
            self.skipTest("the gateway refuses regions it does not know: %s" % a.describe())
        self.assertEqual([c[1] for c in caught], [name],
                         "the catch-all connect_to entry did not lead to the catcher")
        self.assertTrue(code.startswith("InternalError.Upstream"), a.describe())

if __name__ == "__main__":
    unittest.main()
