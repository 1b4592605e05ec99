"""End to end: the audit log. One durable, chained, signed record per call; fail-closed when the
disk fails; rotation; kill -9; bad input."""
import json
import os
import re
import unittest

import auditlib
import gw

BASE = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
        "X-TC-Action": "ModifyProxyConfiguration", "X-TC-Version": "2018-05-29"}


class AuditLog(gw.GatewaysCase):

    def audited(self, **audit):
        cfg = auditlib.audit_config(self.dir, **audit)
        g = self.gateway(extra_config={"audit": cfg})
        return g, cfg

    def test_records_allowed_and_refused_calls(self):
        g, cfg = self.audited()
        status, headers, data = g.request("POST", "/", BASE, gw.SEED_BODY)
        self.assertEqual(status, 200, data)
        answer = json.loads(data)
        rid = headers["X-Tcgw-Request-Id"]
        status, headers2, data2 = g.request("POST", "/", dict(BASE, **{"X-TC-Action": "Nope"}),
                                            gw.SEED_BODY)
        self.assertIn(gw.error_code(json.loads(data2)), ("InvalidAction", "UnknownParameter"))
        # refused from the head (bad framing): answered after its record too
        status3, headers3, data3 = g.request("GET", "/", BASE, b"")
        recs = auditlib.calls(cfg["file"])
        by_id = {r["request_id"]: r for r in recs}
        self.assertEqual(len(recs), 3, recs)
        ok = by_id[rid]
        self.assertEqual(ok["v"], 1)
        self.assertRegex(ok["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertEqual(ok["tc_request_id"], answer["Response"]["RequestId"])
        self.assertEqual(ok["caller"], "local")
        self.assertEqual(ok["identity"], "listener")
        self.assertEqual(ok["peer"], "127.0.0.1")
        self.assertEqual((ok["service"], ok["action"], ok["version"]),
                         ("gaap", "ModifyProxyConfiguration", "2018-05-29"))
        self.assertEqual(ok["params"], json.loads(gw.SEED_BODY))
        self.assertEqual(ok["decision"], "allow")
        self.assertEqual(ok["statement"], "allow-all.json#any-call")
        self.assertEqual(ok["credential"], "default")
        self.assertEqual(ok["outcome"], "answered")
        self.assertEqual(ok["http_status"], 200)
        self.assertEqual(ok["bytes"], {"in": len(gw.SEED_BODY), "out": len(data)})
        self.assertGreater(ok["latency_us"]["upstream"], 0)
        bad = by_id[headers2["X-Tcgw-Request-Id"]]
        self.assertEqual(bad["error_source"], "gateway")
        self.assertEqual(bad["outcome"], "none")
        head = by_id[headers3["X-Tcgw-Request-Id"]]
        self.assertEqual(head["error_code"], gw.error_code(json.loads(data3)))
        g.stop()
        rc, out, err = auditlib.verify([cfg["file"]], cfg["public_key_file"])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("3 call records", out)
        self.assertNotIn("warning", err)  # sealed at stop

    def test_denied_call_names_the_failed_condition(self):
        policy = {"version": "2.0", "statement": [
            {"sid": "small", "effect": "allow", "action": ["gaap:ModifyProxyConfiguration"],
             "resource": ["*"],
             "condition": {"numeric_less_than_equal": {"gaap:Bandwidth": 5}}}]}
        cfg = auditlib.audit_config(self.dir)
        g = self.gateway(extra_config={"audit": cfg}, policies={"p": policy},
                         callers={"local": {"credential": "default", "policies": ["p"]}})
        status, headers, data = g.request("POST", "/", BASE, gw.SEED_BODY)
        self.assertEqual(gw.error_code(json.loads(data)), "UnauthorizedOperation")
        rec = auditlib.calls(cfg["file"])[-1]
        self.assertEqual(rec["decision"], "deny")
        self.assertTrue(rec["reason"], rec)
        self.assertEqual(self.sim.records(), [])


if __name__ == "__main__":
    unittest.main()
