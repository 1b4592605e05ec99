"""The HTTPS listener and client certificates, driven with the curl CLI as a caller would.

The transport verifies each connection's client certificate and gives every call its name (the
first URI SAN, else the CN) or why it is refused; the identity stage maps the name to a caller of
callers_file, or refuses the call with AuthFailure.InvalidAuthorization quoting why.

ClientCertificateCallers checks the callers certificates become; ListenerTransport what the
listener does on its own.
"""
import json
import os
import socket
import ssl
import stat
import subprocess
import tempfile
import unittest

import clientpki
import gw

POLICY_ALLOW_ALL = {"version": "2.0",
                    "statement": [{"effect": "allow", "action": ["*"], "resource": ["*"]}]}
CALLERS = {"callers": {
    "mesh-bot": {"certificate": clientpki.GOOD_URI, "credential": "default",
                 "policies": ["allow-all"]},
    "cn-bot": {"certificate": "cn-bot", "credential": "default", "policies": ["allow-all"]},
}}

# Each refused certificate, and the words its refusal must carry.
REFUSED = [
    ("expired", "has expired"),
    ("not_yet", "not yet valid"),
    ("wrong_ca", "not issued by a CA this listener trusts"),
    ("self_signed", "self-signed"),
    ("server_only", "not for client authentication"),
    ("long_chain", "more than 8 certificates"),
    ("large_chain", "larger than 65536 bytes"),
    (None, "no client certificate was presented"),
]

_pki = {}


def setUpModule():
    tmp = tempfile.TemporaryDirectory(prefix="tcgw-pki-")
    unittest.addModuleCleanup(tmp.cleanup)
    _pki.update(clientpki.make_client_pki(tmp.name))


class Case(gw.GatewaysCase):
    def tls_gateway(self, tls=None, **top):
        """A gateway whose HTTPS listener trusts the client CA, with callers and a policy."""
        section = {"listen_port": 0, "cert_file": self.sim.certs["server_cert"],
                   "key_file": self.sim.certs["server_key"], "client_ca_file": _pki["ca"]}
        section.update(tls or {})
        config = {"tls": section}
        config.update(top)
        return self.gateway(extra_config=config, callers=CALLERS["callers"],
                            policies={"allow-all": POLICY_ALLOW_ALL}, unauthenticated_caller=None)

    def curl(self, port, kind, calls=1):
        """calls POSTs of the seed call on one connection, presenting certificate kind (None: no
        certificate). Returns (curl exit code, [(HTTP status, answer or None, new connections)])."""
        args = ["curl"]
        for i in range(calls):
            # --next: a transfer of its own (options do not carry over), on the same connection.
            args += ["--next"] if i > 0 else []
            args += ["-sS", "--max-time", "10", "--cacert", self.sim.certs["ca"]]
            if kind is not None:
                args += ["--cert", _pki[kind + "_cert"], "--key", _pki[kind + "_key"]]
            args += ["-H", "Host: gaap.tencentcloudapi.com",
                     "-H", "Content-Type: application/json",
                     "-H", "X-TC-Action: ModifyProxyConfiguration",
                     "-H", "X-TC-Version: 2018-05-29",
                     "--data-binary", gw.SEED_BODY.decode(),
                     "-w", "\n@@ %{http_code} %{num_connects}\n",
                     "https://localhost:%d/" % port]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
        results = []
        body = []
        for line in proc.stdout.splitlines():
            if line.startswith("@@ "):
                _, code, connects = line.split()
                text = "".join(body).strip()
                results.append((int(code), json.loads(text) if text else None, int(connects)))
                body = []
            else:
                body.append(line)
        return proc.returncode, results

    def assert_serves(self, g):
        """The gateway still answers: a good certificate's call goes through."""
        self.sim.clear_records()
        rc, results = self.curl(g.tls_port, "good")
        self.assertEqual(rc, 0)
        self.assertEqual(results[0][0], 200)
        self.assertNotIn("Error", results[0][1]["Response"], results[0][1])
        self.assertEqual(len(self.sim.records()), 1)
        status, _, _ = g.request("GET", "/healthz", {"Host": "x"}, None)
        self.assertEqual(status, 200)

    def call_lines(self, g):
        return [line for line in g.read_log().splitlines() if "event=call " in line]


class ClientCertificateCallers(Case):
    """The identity stage turns a verified certificate into its caller."""

    def setUp(self):
        super().setUp()
        self.gw = self.tls_gateway()
        # On the plain listener, a call without identity is refused (no unauthenticated caller).
        status, answer = self.gw.call("ModifyProxyConfiguration", gw.SEED_BODY)
        self.assertEqual(gw.error_code(answer), "AuthFailure.InvalidAuthorization", answer)
        self.assertEqual(self.sim.records(), [])

    def test_good_certificate_is_its_uri_caller(self):
        # Two calls on one connection: the certificate is judged once, both are mesh-bot's.
        rc, results = self.curl(self.gw.tls_port, "good", calls=2)
        self.assertEqual(rc, 0)
        self.assertEqual([(code, connects) for code, _, connects in results], [(200, 1), (200, 0)])
        for _, answer, _ in results:
            self.assertNotIn("Error", answer["Response"], answer)
        self.assertEqual(len(self.sim.records()), 2)
        for line in self.call_lines(self.gw)[-2:]:
            if "caller=" in line:  # the call line names its caller
                self.assertIn("caller=mesh-bot", line)

    def test_certificate_without_uri_is_its_common_name(self):
        rc, results = self.curl(self.gw.tls_port, "cn_only")
        self.assertEqual(rc, 0)
        self.assertNotIn("Error", results[0][1]["Response"], results[0][1])
        self.assertEqual(len(self.sim.records()), 1)
        line = self.call_lines(self.gw)[-1]
        if "caller=" in line:
            self.assertIn("caller=cn-bot", line)

    def test_refused_certificates(self):
        for kind, words in REFUSED:
            with self.subTest(certificate=kind):
                self.sim.clear_records()
                rc, results = self.curl(self.gw.tls_port, kind)
                self.assertEqual(rc, 0)
                code, answer, _ = results[0]
                self.assertEqual(code, 200)
                self.assertEqual(gw.error_code(answer), "AuthFailure.InvalidAuthorization", answer)
                self.assertIn(words, answer["Response"]["Error"]["Message"])
                self.assertEqual(self.sim.records(), [], "a refused call was forwarded")
        self.assert_serves(self.gw)


class ListenerTransport(Case):
    """What the listener does on its own, with or without an identity stage."""

    def test_listening_line_names_both_ports(self):
        g = self.tls_gateway()
        self.assertIsNotNone(g.port)
        self.assertIsNotNone(g.tls_port)
        self.assertNotEqual(g.port, g.tls_port)
        self.assertIn("tls_address=127.0.0.1 tls_port=%d" % g.tls_port, g.read_log())

    def test_chain_too_large_for_a_handshake(self):
        # GnuTLS refuses a Certificate message this large before the gateway sees the request:
        # the connection ends, nothing is forwarded, and the gateway keeps serving.
        g = self.tls_gateway()
        self.sim.clear_records()
        rc, results = self.curl(g.tls_port, "huge_chain")
        self.assertNotEqual(rc, 0)
        self.assertEqual(results, [(0, None, 1)] if results else [])
        self.assertEqual(self.sim.records(), [])
        self.assert_serves(g)

    def test_not_tls_and_silent_clients(self):
        g = self.tls_gateway()
        # Plain HTTP to the HTTPS port: the handshake fails, the connection closes.
        with socket.create_connection(("127.0.0.1", g.tls_port), timeout=10) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: gaap.tencentcloudapi.com\r\n\r\n")
            s.settimeout(10)
            try:
                self.assertNotIn(b"HTTP/1.1 200", s.recv(4096))
            except ConnectionResetError:
                pass
        # A TLS client that stops mid-handshake holds nothing up.
        silent = socket.create_connection(("127.0.0.1", g.tls_port), timeout=10)
        self.addCleanup(silent.close)
        silent.sendall(b"\x16\x03\x01\x00\x05")  # a record header, and nothing more
        self.assert_serves(g)

    def test_handshake_with_python_client_and_no_certificate(self):
        # Another TLS stack than curl's: the handshake completes without a client certificate.
        g = self.tls_gateway()
        ctx = ssl.create_default_context(cafile=self.sim.certs["ca"])
        with socket.create_connection(("127.0.0.1", g.tls_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])

    def test_tls_alone(self):
        g = self.tls_gateway(plain_listener=False)
        self.assertIsNone(g.port)
        self.assertIn("address=none port=none", g.read_log())
        rc, results = self.curl(g.tls_port, "good")
        self.assertEqual((rc, results[0][0]), (0, 200))

    def test_unauthenticated_caller_is_announced(self):
        g = self.gateway(unauthenticated_caller="sidecar",
                         callers={"sidecar": {"credential": "default", "policies": ["allow-all"]}})
        self.assertIn("level=warning event=unauthenticated_caller caller=sidecar address=127.0.0.1 "
                      "port=%d" % g.port, g.read_log())

    def start_refused(self, config, words):
        d = os.path.join(self.dir, "refused%d" % next(self.names))
        os.makedirs(d)
        g = gw.Gateway(d, self.sim.port, self.sim.ca_file, extra_config=config)
        with self.assertRaises(AssertionError) as ctx:
            g.start()
        self.assertIn(words, str(ctx.exception))

    def test_start_refusals(self):
        section = {"listen_port": 0, "cert_file": self.sim.certs["server_cert"],
                   "key_file": self.sim.certs["server_key"], "client_ca_file": _pki["ca"]}
        loose = os.path.join(self.dir, "loose.key")
        with open(self.sim.certs["server_key"], "rb") as src, open(loose, "wb") as dst:
            dst.write(src.read())
        os.chmod(loose, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
        self.start_refused({"tls": dict(section, key_file=loose)},
                           "tls key_file %s is accessible by group or others (mode 644): run "
                           "'chmod 600 %s'" % (loose, loose))
        self.start_refused({"tls": dict(section, key_file=_pki["good_key"])},
                           "tls: cert_file and key_file do not load")
        self.start_refused({"tls": dict(section, client_ca_file=self.sim.certs["server_key"])},
                           "tls: client_ca_file holds no PEM certificate")
        self.start_refused({"tls": dict(section, client_ca_file="/nonexistent/ca.pem")},
                           "tls client_ca_file /nonexistent/ca.pem")
        no_ca = dict(section)
        del no_ca["client_ca_file"]
        self.start_refused({"tls": no_ca}, "\"tls\" needs \"client_ca_file\"")
        self.start_refused({"accept": ["certificate"]}, "only the HTTPS listener verifies")
        self.start_refused({"tls": dict(section, unauthenticated_caller="x")},
                           "\"unauthenticated_caller\" is not allowed in \"tls\"")


if __name__ == "__main__":
    unittest.main()
