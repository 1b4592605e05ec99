"""Helpers for tcgw's end-to-end tests (Python standard library only).

- free_port(): a free TCP port on 127.0.0.1.
- make_certs(dirpath): runs certs/gen-dev-certs.sh and returns the paths it made.
- Simulator: starts and stops tcgw-sim (the GAAP upstream double) and reads its request records.
- tc3_sign()/tc3_parts()/signed_headers(): a third, independent TC3-HMAC-SHA256 signer.
- https_post()/HttpsClient: TLS requests to 127.0.0.1 that verify the dev CA with a real SNI name.

Environment: TCGW_SIM_BIN (the simulator binary), TCGW_SOURCE_DIR (repository root; defaults to
two levels above this file), TCGW_SHARED_DIR (Tencent reference files, optional).
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

GAAP_HOST = "gaap.tencentcloudapi.com"
GAAP_SERVICE = "gaap"
GAAP_VERSION = "2018-05-29"
ALGORITHM = "TC3-HMAC-SHA256"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0


def source_dir():
    """The repository root: $TCGW_SOURCE_DIR, else two levels above this file."""
    env = os.environ.get("TCGW_SOURCE_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2]


def shared_dir():
    """The directory of Tencent reference files, or None when it is not available."""
    env = os.environ.get("TCGW_SHARED_DIR")
    path = Path(env) if env else source_dir().parent / "shared"
    return path if path.is_dir() else None


def default_fixture():
    return source_dir() / "tests" / "sim" / "fixture.json"


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago (prefer --port 0 where possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certs(dirpath):
    """Generates (or reuses) the dev PKI in dirpath; returns a dict of absolute paths."""
    dirpath = Path(dirpath)
    script = source_dir() / "certs" / "gen-dev-certs.sh"
    proc = subprocess.run(["bash", str(script), str(dirpath)], capture_output=True, text=True,
                          timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{script} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    names = {
        "ca": "ca.pem", "ca_key": "ca.key",
        "server_cert": "server.pem", "server_key": "server.key",
        "client_cert": "client.pem", "client_key": "client.key",
    }
    paths = {k: str((dirpath / v).resolve()) for k, v in names.items()}
    paths["dir"] = str(dirpath.resolve())
    return paths


# ---------------------------------------------------------------------------------------------
# TC3-HMAC-SHA256, written from Tencent's description of the algorithm (independent of the
# gateway's C signer and of the simulator's C verifier).


def _hmac(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def tc3_parts(secret_id, secret_key, host, service, timestamp, content_type, payload_bytes,
              action=None):
    """Every intermediate value of a TC3 signature, as a dict.

    Signs content-type and host, plus x-tc-action when action is given. Header values are
    trimmed and lowercased, as Tencent's rule says (so the action appears lowercased).
    """
    if isinstance(payload_bytes, str):
        payload_bytes = payload_bytes.encode("utf-8")
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    headers = [("content-type", content_type), ("host", host)]
    if action is not None:
        headers.append(("x-tc-action", action))
    canonical_headers = "".join(f"{k}:{v.strip().lower()}\n" for k, v in headers)
    signed_headers = ";".join(k for k, _ in headers)
    hashed_payload = hashlib.sha256(payload_bytes).hexdigest()
    canonical_request = "\n".join(
        ["POST", "/", "", canonical_headers, signed_headers, hashed_payload])
    hashed_canonical_request = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join([ALGORITHM, str(timestamp), scope, hashed_canonical_request])
    k_date = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    k_service = _hmac(k_date, service)
    k_signing = _hmac(k_service, "tc3_request")
    signature = hmac.new(k_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    authorization = (f"{ALGORITHM} Credential={secret_id}/{scope}, "
                     f"SignedHeaders={signed_headers}, Signature={signature}")
    return {
        "date": date,
        "hashed_payload": hashed_payload,
        "canonical_request": canonical_request,
        "hashed_canonical_request": hashed_canonical_request,
        "string_to_sign": string_to_sign,
        "signing_key_hex": k_signing.hex(),
        "signature": signature,
        "authorization": authorization,
    }


def tc3_sign(secret_id, secret_key, host, service, timestamp, content_type, payload_bytes,
             action=None):
    """The Authorization header value for a TC3-HMAC-SHA256 request."""
    return tc3_parts(secret_id, secret_key, host, service, timestamp, content_type,
                     payload_bytes, action)["authorization"]


def signed_headers(secret_id, secret_key, action, body, timestamp=None, host=GAAP_HOST,
                   version=GAAP_VERSION, region=None, content_type="application/json",
                   sign_action=False, service=GAAP_SERVICE):
    """A complete header dict for a signed GAAP call (Host included, Content-Length not)."""
    if timestamp is None:
        timestamp = int(time.time())
    headers = {
        "Host": host,
        "Content-Type": content_type,
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(timestamp),
    }
    if region is not None:
        headers["X-TC-Region"] = region
    headers["Authorization"] = tc3_sign(secret_id, secret_key, host, service, timestamp,
                                        content_type, body,
                                        action if sign_action else None)
    return headers


# ---------------------------------------------------------------------------------------------
# HTTPS client: connects to 127.0.0.1:port, presents server_hostname for SNI and verification.


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # dict, lowercased names
        self.body = body        # bytes

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"Response({self.status}, {self.body[:300]!r})"


def tls_context(ca_file, cert=None, key=None):
    """A client context that trusts only ca_file (and presents cert/key if given)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


class _Connection(http.client.HTTPSConnection):
    def __init__(self, port, context, server_hostname, timeout):
        super().__init__("127.0.0.1", port, context=context, timeout=timeout)
        self._server_hostname = server_hostname
        self._ctx = context

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self._server_hostname)


class HttpsClient:
    """A keep-alive HTTPS client; every header is sent exactly as given (plus Content-Length)."""

    def __init__(self, port, ca_file=None, server_hostname=GAAP_HOST, context=None, timeout=10):
        self.context = context if context is not None else tls_context(ca_file)
        self.conn = _Connection(port, self.context, server_hostname, timeout)

    def request(self, method, path, headers, body=b""):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            self.conn.putheader(name, value)
        if body or method == "POST":
            self.conn.putheader("Content-Length", str(len(body)))
        self.conn.endheaders(body if body else None)
        resp = self.conn.getresponse()
        data = resp.read()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)

    def post(self, host_header, headers, body):
        headers = dict(headers)
        headers.setdefault("Host", host_header)
        return self.request("POST", "/", headers, body)

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def https_post(port, host_header, headers, body, ca_file, server_hostname=GAAP_HOST,
               context=None, timeout=10):
    """One POST / over a fresh TLS connection to 127.0.0.1:port; returns a Response."""
    with HttpsClient(port, ca_file, server_hostname, context, timeout) as c:
        return c.post(host_header, headers, body)


# ---------------------------------------------------------------------------------------------
# The simulator process.


class Simulator:
    """tcgw-sim on a free loopback port. Use as a context manager or call stop() (addCleanup)."""

    def __init__(self, binary=None):
        self.binary = binary or os.environ.get("TCGW_SIM_BIN")
        if not self.binary:
            raise RuntimeError("TCGW_SIM_BIN is not set: point it at the tcgw-sim binary")
        self.proc = None
        self.port = None
        self.ca_file = None
        self.certs = None
        self.workdir = None
        self.records_path = None
        self.stderr_path = None
        self._stderr = None

    def start(self, workdir, credentials, rate_limit=20, max_skew=300, fixture=None, certs=None,
              extra_args=()):
        """Launches the simulator; returns self once it printed its listening line.

        credentials: {"SecretId": "SecretKey"}; certs: a make_certs() dict (made in workdir/certs
        when None); fixture: path (tests/sim/fixture.json when None) or a dict to write out.
        """
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.certs = certs if certs is not None else make_certs(self.workdir / "certs")
        self.ca_file = self.certs["ca"]
        creds_path = self.workdir / "sim-credentials.json"
        creds_path.write_text(json.dumps(credentials), encoding="utf-8")
        os.chmod(creds_path, 0o600)
        if fixture is None:
            fixture = default_fixture()
        elif isinstance(fixture, dict):
            path = self.workdir / "sim-fixture.json"
            path.write_text(json.dumps(fixture, ensure_ascii=False), encoding="utf-8")
            fixture = path
        self.records_path = self.workdir / "sim-records.jsonl"
        self.records_path.write_bytes(b"")
        self.stderr_path = self.workdir / "sim-stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        args = [self.binary, "--port", "0",
                "--cert", self.certs["server_cert"], "--key", self.certs["server_key"],
                "--fixture", str(fixture), "--credentials", str(creds_path),
                "--records", str(self.records_path),
                "--rate-limit", str(rate_limit), "--max-skew", str(max_skew), *extra_args]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr)
        line = self._read_line(START_TIMEOUT)
        if not line.startswith("listening on "):
            self._kill()
            raise RuntimeError(f"tcgw-sim did not start (got {line!r}):\n{self.stderr_text()}")
        self.port = int(line.rsplit(":", 1)[1])
        return self

    def _read_line(self, timeout):
        deadline = time.monotonic() + timeout
        out = self.proc.stdout
        buf = b""
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([out], [], [], left)
            if not ready:
                break
            chunk = os.read(out.fileno(), 1)
            if not chunk:  # exited
                break
            buf += chunk
        return buf.decode("utf-8", "replace").strip()

    def stderr_text(self):
        if self.stderr_path is None or not self.stderr_path.exists():
            return ""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def records(self):
        """Every request the simulator recorded, oldest first (list of dicts)."""
        text = self.records_path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def clear_records(self):
        # The simulator appends (O_APPEND), so truncating here is safe while it runs.
        with open(self.records_path, "wb"):
            pass

    @staticmethod
    def record_body_bytes(record):
        """The exact body bytes a record describes."""
        if record.get("body") is not None:
            return record["body"].encode("utf-8")
        return base64.b64decode(record.get("body_b64") or "")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _kill(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def stop(self):
        """SIGTERM, wait, and fail unless it exited 0 (so sanitizer reports fail the test)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"tcgw-sim did not stop on SIGTERM:\n{self.stderr_text()}")
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None
        if code != 0:
            raise AssertionError(f"tcgw-sim exited with {code}:\n{self.stderr_text()}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # Convenience: a signed call straight to the simulator.
    def call(self, action, params, secret_id, secret_key, timestamp=None, body=None, **kw):
        """Signs and POSTs params (or the exact body bytes) for action; returns a Response."""
        if body is None:
            body = json.dumps(params).encode("utf-8")
        headers = signed_headers(secret_id, secret_key, action, body, timestamp=timestamp, **kw)
        return https_post(self.port, headers["Host"], headers, body, self.ca_file)
