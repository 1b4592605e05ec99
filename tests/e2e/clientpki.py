"""Client certificates for the HTTPS listener's tests, made at test time with the openssl CLI.

make_client_pki(dirpath) returns a dict of absolute paths:
  ca                      the client CA (the gateway's tls.client_ca_file)
  <kind>_cert, <kind>_key for each kind below (the cert file holds the chain the client sends)
    good          URI SAN spiffe://tcgw.test/mesh-bot (and a CN that must not be used)
    cn_only       only a subject CN: cn-bot
    expired       from the client CA, valid 2020-01-01 to 2020-01-02
    not_yet       from the client CA, valid from 2099
    server_only   from the client CA, extended key usage serverAuth only
    wrong_ca      URI SAN spiffe://tcgw.test/mesh-bot, from another CA
    self_signed   URI SAN spiffe://tcgw.test/mesh-bot, signed by its own key
    long_chain    leaf + 9 intermediates, all from the client CA (10 certificates)
    large_chain   leaf + 1 intermediate from the client CA, the leaf over 64 KiB of SANs
    huge_chain    leaf + 1 intermediate, the leaf over 128 KiB (more than a TLS handshake
                  message GnuTLS accepts)
Keys are EC P-256, mode 0600, never committed.
"""
import os
import subprocess
from pathlib import Path

GOOD_URI = "spiffe://tcgw.test/mesh-bot"
DAYS = 30


def _run(args, cwd):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(args), proc.returncode,
                                                      proc.stdout, proc.stderr))
    return proc.stdout


class _Pki:
    def __init__(self, d):
        self.d = Path(d)
        self.d.mkdir(parents=True, exist_ok=True)
        self.serial = 0x1000

    def path(self, name):
        return str(self.d / name)

    def key(self, name):
        path = self.path(name + ".key")
        _run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-out", path], self.d)
        os.chmod(path, 0o600)
        return path

    def ext(self, name, lines):
        path = self.path(name + ".ext")
        # Also an `openssl req -config`: an empty [dn] since -subj gives the subject.
        Path(path).write_text("[req]\ndistinguished_name = dn\n[dn]\n[v3]\n" + "\n".join(lines)
                              + "\n", encoding="utf-8")
        return path

    def ca(self, name, subject, lines=()):
        """A self-signed CA certificate (also used for the self-signed leaf)."""
        key = self.key(name)
        cert = self.path(name + ".pem")
        ext = self.ext(name, list(lines) or [
            "basicConstraints = critical,CA:TRUE",
            "keyUsage = critical,keyCertSign,cRLSign",
            "subjectKeyIdentifier = hash"])
        _run(["openssl", "req", "-x509", "-new", "-sha256", "-key", key, "-days", str(DAYS),
              "-subj", subject, "-config", ext, "-extensions", "v3",
              "-set_serial", str(self._next()), "-out", cert], self.d)
        return cert, key

    def _next(self):
        self.serial += 1
        return self.serial

    def issue(self, name, subject, lines, ca_cert, ca_key, start=None, end=None):
        """A certificate signed by ca; start/end (YYYYMMDDHHMMSSZ) set dates in the past or
        future through `openssl ca`, which alone takes them."""
        key = self.key(name)
        csr = self.path(name + ".csr")
        cert = self.path(name + ".pem")
        ext = self.ext(name, lines)
        _run(["openssl", "req", "-new", "-sha256", "-key", key, "-subj", subject,
              "-config", ext, "-out", csr], self.d)
        if start is None:
            _run(["openssl", "x509", "-req", "-sha256", "-in", csr, "-CA", ca_cert, "-CAkey",
                  ca_key, "-set_serial", str(self._next()), "-days", str(DAYS), "-extfile", ext,
                  "-extensions", "v3", "-out", cert], self.d)
        else:
            db = self.d / ("ca-db-" + name)
            db.mkdir()
            (db / "index.txt").write_text("", encoding="utf-8")
            (db / "serial").write_text("%X\n" % self._next(), encoding="utf-8")
            conf = db / "ca.cnf"
            conf.write_text(
                "[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s\n"
                "serial = %s/serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n"
                "[any]\ncommonName = optional\norganizationName = optional\n" % (db, db, db),
                encoding="utf-8")
            _run(["openssl", "ca", "-batch", "-notext", "-config", str(conf), "-cert", ca_cert,
                  "-keyfile", ca_key, "-in", csr, "-out", cert, "-startdate", start,
                  "-enddate", end, "-extfile", ext, "-extensions", "v3"], self.d)
        os.unlink(csr)
        return cert, key

    def bundle(self, name, *certs):
        """The certificate file a client sends: its certificate first, then its chain."""
        path = self.path(name + "-chain.pem")
        Path(path).write_text("".join(Path(c).read_text(encoding="utf-8") for c in certs),
                              encoding="utf-8")
        return path


LEAF = ["basicConstraints = critical,CA:FALSE", "keyUsage = critical,digitalSignature",
        "extendedKeyUsage = clientAuth"]
INTERMEDIATE = ["basicConstraints = critical,CA:TRUE", "keyUsage = critical,keyCertSign",
                "subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid"]


def _big_san(uri, size):
    """A SAN list of about size bytes: the URI first, then DNS names."""
    lines = ["subjectAltName = @san", "[san]", "URI.1 = " + uri]
    label = "x" * 60
    for i in range(size // 70 + 1):
        lines.append("DNS.%d = n%d.%s.tcgw.test" % (i + 1, i, label))
    return lines


def make_client_pki(dirpath):
    pki = _Pki(dirpath)
    out = {}
    ca, ca_key = pki.ca("client-ca", "/O=tcgw test/CN=tcgw test client CA")
    out["ca"] = ca

    def leaf(kind, subject, extra=(), issuer=(ca, ca_key), **dates):
        cert, key = pki.issue(kind, subject, LEAF + list(extra), issuer[0], issuer[1], **dates)
        out[kind + "_cert"], out[kind + "_key"] = cert, key
        return cert, key

    uri = ["subjectAltName = URI:" + GOOD_URI]
    leaf("good", "/O=tcgw test/CN=not-this-name", uri)
    leaf("cn_only", "/O=tcgw test/CN=cn-bot")
    leaf("expired", "/CN=expired-bot", ["subjectAltName = URI:spiffe://tcgw.test/expired"],
         start="20200101000000Z", end="20200102000000Z")
    leaf("not_yet", "/CN=future-bot", ["subjectAltName = URI:spiffe://tcgw.test/future"],
         start="20990101000000Z", end="20990102000000Z")
    cert, key = pki.issue("server_only", "/CN=server-bot",
                          ["basicConstraints = critical,CA:FALSE",
                           "keyUsage = critical,digitalSignature",
                           "extendedKeyUsage = serverAuth",
                           "subjectAltName = URI:spiffe://tcgw.test/server-bot"], ca, ca_key)
    out["server_only_cert"], out["server_only_key"] = cert, key

    other, other_key = pki.ca("other-ca", "/O=tcgw test/CN=some other CA")
    leaf("wrong_ca", "/CN=mesh-bot", uri, issuer=(other, other_key))

    cert, key = pki.ca("self_signed", "/CN=mesh-bot", LEAF + uri)
    out["self_signed_cert"], out["self_signed_key"] = cert, key

    # 9 intermediates below the client CA, then the leaf: 10 certificates sent.
    issuer = (ca, ca_key)
    chain = []
    for i in range(9):
        issuer = pki.issue("int%d" % i, "/CN=intermediate %d" % i, INTERMEDIATE, *issuer)
        chain.insert(0, issuer[0])
    cert, key = pki.issue("long_leaf", "/CN=long-bot", LEAF + uri, *issuer)
    out["long_chain_cert"], out["long_chain_key"] = pki.bundle("long", cert, *chain), key

    big_int = pki.issue("big-int", "/CN=big intermediate", INTERMEDIATE, ca, ca_key)
    cert, key = pki.issue("large_leaf", "/CN=large-bot", LEAF + _big_san(GOOD_URI, 70 * 1024),
                          *big_int)
    out["large_chain_cert"], out["large_chain_key"] = pki.bundle("large", cert, big_int[0]), key
    cert, key = pki.issue("huge_leaf", "/CN=huge-bot", LEAF + _big_san(GOOD_URI, 140 * 1024),
                          *big_int)
    out["huge_chain_cert"], out["huge_chain_key"] = pki.bundle("huge", cert, big_int[0]), key
    return {k: str(Path(v).resolve()) for k, v in out.items()}


if __name__ == "__main__":
    import json
    import sys
    print(json.dumps(make_client_pki(sys.argv[1]), indent=2))
