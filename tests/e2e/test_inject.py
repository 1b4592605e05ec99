"""End to end: secret values injected into call parameters (issue 12).

An operator stores a private key with `tcgw secrets put-value`; a caller uploads a certificate
with GAAP CreateCertificate naming the key as "{{tcgw:secret/gaap-edge-key}}". The simulator must
receive the real key, signed; the caller's answers and the gateway's log must never hold it (in
plain, JSON-escaped, hex or base64 form, nor any line of it), and every refusal must leave the
simulator without a request.

Run: cd tests/e2e && TCGW_BIN=... TCGW_SIM_BIN=... python3 -m unittest -v test_inject
"""
import base64
import json
import os
import re
import secrets

import auditlib
import gw
import harness

ACTION = "CreateCertificate"
PLACEHOLDER = "{{tcgw:secret/gaap-edge-key}}"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def canary_pem():
    """A PEM-shaped private key of random base64: every 64-character line is unique to it."""
    body = base64.b64encode(secrets.token_bytes(48 * 20)).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN TEST KEY-----\n" + "\n".join(lines) + "\n-----END TEST KEY-----"


CERTS_POLICY = {
    "version": "2.0",
    "statement": [
        {"sid": "upload-edge-key", "effect": "allow", "action": ["gaap:CreateCertificate"],
         "resource": ["*"],
         "condition": {"for_all_value:string_like": {"tcgw:SecretName": ["gaap-*", "long-key"]},
                       "for_all_value:string_equal": {"tcgw:SecretParameter":
                                                      ["CertificateKey"]}}},
        {"sid": "everything-else", "effect": "allow", "action": ["*"], "resource": ["*"]},
    ],
}


class InjectCase(gw.GatewaysCase):

    def setUp(self):
        super().setUp()
        self.key = canary_pem()
        self.answers = []  # every answer body the callers read, raw bytes

    def forms(self, value):
        """The forms a leak could take: plain, JSON-escaped, hex, base64, and each line."""
        raw = value.encode()
        out = [raw, json.dumps(value)[1:-1].encode(), raw.hex().encode(),
               base64.b64encode(raw), json.dumps(value).encode()]
        out += [line.encode() for line in value.splitlines() if len(line) >= 32]
        return out

    def assert_never_seen(self, g, value):
        places = {"log": g.read_log().encode()}
        with open(os.path.join(g.workdir, "audit.log"), "rb") as f:
            places["audit log"] = f.read()
        for i, a in enumerate(self.answers):
            places["answer %d" % i] = a
        for where, data in places.items():
            for form in self.forms(value):
                self.assertNotIn(form, data, "a form of the secret value is in the %s" % where)

    def make_gateway(self, policies=None, callers=None, values=None):
        d = os.path.join(self.dir, "gw%d" % next(self.names))
        os.makedirs(d)
        # Audited: the audit record must show the placeholder, never the value.
        g = gw.Gateway(d, self.sim.port, self.sim.ca_file,
                       extra_config={"audit": auditlib.audit_config(d)},
                       callers=callers or {"local": {"credential": "default",
                                                    "policies": ["certs"]}},
                       policies=policies or {"certs": CERTS_POLICY, "allow-all": gw.ALLOW_ALL})
        g.provision()
        for name, value in (values if values is not None else {"gaap-edge-key": self.key}).items():
            proc = gw.run_tcgw(["secrets", "put-value", name, "--key", g.key_path, "--store",
                                g.store_path], stdin=(value + "\n").encode())  # as a file ends
            self.assertNotIn(value[:40].encode(), proc.stdout + proc.stderr)
        g.start(provision=False)
        self.addCleanup(g.stop)
        return g

    def send(self, g, body, action=ACTION, headers=None):
        """Posts body (bytes or a dict); returns the parsed answer and keeps its raw bytes."""
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        h = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
             "X-TC-Action": action, "X-TC-Version": "2018-05-29"}
        h.update(headers or {})
        status, _, data = g.request("POST", "/", h, body)
        self.answers.append(data)
        return status, json.loads(data)

    def assert_refused(self, answer, code):
        self.assertEqual(gw.error_code(answer), code, answer)
        self.assertEqual(self.sim.records(), [], "nothing may reach Tencent Cloud")

    # ---- the value goes where it must, and nowhere else -------------------------------------

    def test_simulator_receives_the_value_signed_and_the_rest_of_the_bytes_unchanged(self):
        g = self.make_gateway()
        # Odd spacing and a number spelt as a string: the caller's bytes must survive as sent.
        body = ('{ "CertificateType" : "2",\n  "CertificateContent": "-----BEGIN CERT\\u002d",'
                ' "CertificateKey" :  "' + PLACEHOLDER + '", "CertificateAlias": "edge" }').encode()
        status, answer = self.send(g, body)
        self.assertEqual(status, 200)
        self.assertRegex(answer["Response"]["CertificateId"], r"^cert-")
        (rec,) = self.sim.records()
        sent = self.sim.record_body_bytes(rec)
        self.assertEqual(sent, body.replace(('"%s"' % PLACEHOLDER).encode(),
                                            json.dumps(self.key).encode()))
        self.assertEqual(json.loads(sent)["CertificateKey"], self.key)
        h = rec["headers"]
        self.assertEqual(h["authorization"], harness.tc3_sign(
            gw.DEV_SECRET_ID, gw.DEV_SECRET_KEY, h["host"], "gaap", int(h["x-tc-timestamp"]),
            "application/json", sent))
        self.assertEqual(rec["status"] if "status" in rec else 200, 200)
        self.assert_never_seen(g, self.key)
        # The audit record names the secret by its placeholder.
        (record,) = auditlib.calls(os.path.join(g.workdir, "audit.log"))
        self.assertIn(PLACEHOLDER, json.dumps(record))
        g.stop()
        self.assert_never_seen(g, self.key)

    def test_calls_without_placeholders_are_sent_byte_for_byte(self):
        g = self.make_gateway()
        body = b'{"CertificateType":1 ,"CertificateContent":"ca\\/pem"}'
        status, answer = self.send(g, body)
        self.assertIn("CertificateId", answer["Response"])
        (rec,) = self.sim.records()
        self.assertEqual(self.sim.record_body_bytes(rec), body)

    def test_an_escaped_literal_is_sent_without_its_escape(self):
        g = self.make_gateway()
        status, answer = self.send(g, {"CertificateType": 1, "CertificateContent": "ca",
                                       "CertificateAlias": "{{tcgw:raw}}" + PLACEHOLDER})
        self.assertIn("CertificateId", answer["Response"], answer)
        (rec,) = self.sim.records()
        self.assertEqual(json.loads(self.sim.record_body_bytes(rec))["CertificateAlias"],
                         PLACEHOLDER)

    def test_an_escape_cannot_hide_a_value_from_the_policy(self):
        """A deny on a value holds however the caller spells it: an escape in front of an
        ordinary value is refused, and an escaped literal is judged as the text sent."""
        deny = {"version": "2.0", "statement": [
            {"sid": "all", "effect": "allow", "action": "*", "resource": "*"},
            {"sid": "not-prod", "effect": "deny", "action": "gaap:ModifyProxyConfiguration",
             "resource": "*", "condition": {"string_equal": {"gaap:ProxyId": ["link-prod0001"]}}},
            {"sid": "no-reserved-alias", "effect": "deny", "action": "gaap:CreateCertificate",
             "resource": "*",
             "condition": {"string_like": {"gaap:CertificateAlias": ["{{tcgw:secret/*"]}}}]}
        g = self.make_gateway(policies={"deny": deny},
                              callers={"local": {"credential": "default", "policies": ["deny"]}})
        status, answer = self.send(g, {"ProxyId": "{{tcgw:raw}}link-prod0001", "Bandwidth": 10},
                                   action="ModifyProxyConfiguration")
        self.assert_refused(answer, "InvalidParameterValue")
        status, answer = self.send(g, {"CertificateType": 1, "CertificateContent": "ca",
                                       "CertificateAlias": "{{tcgw:raw}}" + PLACEHOLDER})
        self.assert_refused(answer, "UnauthorizedOperation")

    def test_secrets_list_names_values_never_shows_them(self):
        g = self.make_gateway()
        proc = gw.run_tcgw(["secrets", "list", "--key", g.key_path, "--store", g.store_path,
                            "--json"])
        listed = json.loads(proc.stdout)
        self.assertIn({"name": "gaap-edge-key", "value_bytes": len(self.key)},
                      listed)
        for form in self.forms(self.key):
            self.assertNotIn(form, proc.stdout + proc.stderr)

    # ---- refusals: a clear Tencent error, nothing forwarded --------------------------------

    def test_unknown_secret_is_resource_not_found(self):
        g = self.make_gateway()
        _, answer = self.send(g, {"CertificateType": 2, "CertificateContent": "c",
                                  "CertificateKey": "{{tcgw:secret/gaap-missing}}"})
        self.assert_refused(answer, "ResourceNotFound")
        self.assertIn("gaap-missing", answer["Response"]["Error"]["Message"])

    def test_policy_refuses_a_secret_not_listed(self):
        g = self.make_gateway(values={"gaap-edge-key": self.key, "db-root": "hunter2-db-root!"})
        _, answer = self.send(g, {"CertificateType": 2, "CertificateContent": "c",
                                  "CertificateKey": "{{tcgw:secret/db-root}}"})
        self.assert_refused(answer, "UnauthorizedOperation")
        self.assertNotIn("hunter2", json.dumps(answer))
        # One allowed secret does not carry another (for_all_value).
        _, answer = self.send(g, {"CertificateType": 2, "CertificateContent":
                                  "{{tcgw:secret/db-root}}", "CertificateKey": PLACEHOLDER})
        self.assert_refused(answer, "UnauthorizedOperation")
        self.assert_never_seen(g, self.key)

    def test_policy_refuses_a_secret_in_another_parameter(self):
        g = self.make_gateway()
        _, answer = self.send(g, {"CertificateType": 1, "CertificateContent": PLACEHOLDER})
        self.assert_refused(answer, "UnauthorizedOperation")
        self.assertIn("SecretParameter", answer["Response"]["Error"]["Message"])
        self.assert_never_seen(g, self.key)

    def test_a_caller_whose_policy_says_nothing_of_secrets_is_refused(self):
        g = self.make_gateway()
        out = gw.run_tcgw(["callers", "add", "bot", "--policy", "allow-all", "--config",
                           g.config_path]).stdout.decode()
        token = [w for w in re.split(r"\s+", out) if TOKEN_RE.match(w)][0]
        g.reload()
        auth = {"Authorization": "Bearer " + token}
        _, answer = self.send(g, {"CertificateType": 2, "CertificateContent": "c",
                                  "CertificateKey": PLACEHOLDER}, headers=auth)
        self.assert_refused(answer, "UnauthorizedOperation")
        self.assertIn("tcgw:SecretName", answer["Response"]["Error"]["Message"])
        line = [l for l in g.read_log().splitlines() if "event=call" in l][-1]
        self.assertIn("caller=bot", line)
        self.assertIn("decision=deny", line)
        # The same caller may still make calls without secrets.
        _, answer = self.send(g, {"CertificateType": 1, "CertificateContent": "c"}, headers=auth)
        self.assertIn("CertificateId", answer["Response"], answer)
        self.assert_never_seen(g, self.key)

    def test_a_placeholder_where_no_string_goes_is_refused(self):
        g = self.make_gateway()
        _, answer = self.send(g, {"CertificateType": PLACEHOLDER, "CertificateContent": "c"})
        self.assert_refused(answer, "InvalidParameterValue")
        self.assertIn("CertificateType", answer["Response"]["Error"]["Message"])

    def test_a_misspelt_placeholder_is_refused_not_sent(self):
        g = self.make_gateway()
        for bad in ("{{tcgw:secrets/gaap-edge-key}}", "{{tcgw:secret/gaap-edge-key}} ",
                    "{{tcgw:secret/bad name}}", "{{tcgw:secret/}}"):
            _, answer = self.send(g, {"CertificateType": 2, "CertificateContent": "c",
                                      "CertificateKey": bad})
            self.assert_refused(answer, "InvalidParameterValue")
        # A placeholder inside a longer string is not one: sent as it is.
        _, answer = self.send(g, {"CertificateType": 2, "CertificateContent": "c",
                                  "CertificateKey": "key: " + PLACEHOLDER})
        (rec,) = self.sim.records()
        self.assertEqual(json.loads(self.sim.record_body_bytes(rec))["CertificateKey"],
                         "key: " + PLACEHOLDER)

    def test_a_value_too_long_for_its_parameter_is_refused(self):
        long_key = "L" * 16000 + canary_pem()  # past CertificateKey's 16384 bytes
        g = self.make_gateway(values={"gaap-edge-key": self.key, "long-key": long_key})
        _, answer = self.send(g, {"CertificateType": 2, "CertificateContent": "c",
                                  "CertificateKey": "{{tcgw:secret/long-key}}"})
        self.assert_refused(answer, "InvalidParameterValue")
        message = answer["Response"]["Error"]["Message"]
        self.assertIn("16384", message)
        self.assertIn("long-key", message)
        self.assert_never_seen(g, long_key)

    # ---- defence in depth: an upstream that echoes the value -------------------------------

    def test_a_value_echoed_in_an_answer_is_redacted(self):
        g = self.make_gateway()
        _, answer = self.send(g, {"CertificateType": 2, "CertificateContent": "c",
                                  "CertificateKey": PLACEHOLDER,
                                  "CertificateAlias": "tcgw-test-echo"})
        self.assertEqual(answer["Response"]["EchoedKey"], PLACEHOLDER)
        (rec,) = self.sim.records()
        self.assertEqual(json.loads(self.sim.record_body_bytes(rec))["CertificateKey"], self.key)
        self.sim.clear_records()
        _, answer = self.send(g, {"CertificateType": 2, "CertificateContent": "c",
                                  "CertificateKey": PLACEHOLDER,
                                  "CertificateAlias": "tcgw-test-echo-error"})
        self.assertEqual(gw.error_code(answer), "InvalidParameterValue")
        self.assertIn(PLACEHOLDER, answer["Response"]["Error"]["Message"])
        self.assert_never_seen(g, self.key)


if __name__ == "__main__":
    import unittest
    unittest.main()
