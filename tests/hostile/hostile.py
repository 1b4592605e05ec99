"""Shared pieces of the hostile corpus (tests/hostile/test_*.py): raw HTTP exchanges over a socket
with bounded reads, a "stray catcher" that proves the gateway connects nowhere it should not, a
gateway + simulator stack whose every other upstream name leads to the catcher, a TLS upstream
with fault modes, and /proc readings of the gateway process.

Only loopback addresses are ever used. Every read has a timeout; a timeout is reported as such,
never waited out silently.
"""
import json
import os
import re
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import gw
import harness

READ_TIMEOUT = float(os.environ.get("TCGW_HOSTILE_READ_TIMEOUT", "5"))
ALIVE_TIMEOUT = 10.0  # a normal call through the simulator, under the sanitizers
CLOSE_WAIT = float(os.environ.get("TCGW_HOSTILE_CLOSE_WAIT", "3"))
REQUEST_ID_RE = r"^[0-9a-f-]{36}$"

GAAP = b"gaap.tencentcloudapi.com"
VALID_BODY = b'{"Limit": 1}'  # a call the gateway forwards when nothing else is wrong


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name, default):
    value = os.environ.get(name)
    return float(value) if value else default


# ---------------------------------------------------------------------------------------------
# Raw requests.


def head(lines, request_line=b"POST / HTTP/1.1"):
    """request_line CRLF, each line CRLF, then the empty line (no body)."""
    return request_line + b"\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def call_lines(host=GAAP, action=b"DescribeProxies", length=len(VALID_BODY), extra=()):
    """The header lines of a valid call, with Content-Length when length is not None."""
    lines = [b"Host: " + host, b"Content-Type: application/json",
             b"X-TC-Action: " + action, b"X-TC-Version: 2018-05-29"]
    if length is not None:
        lines.append(b"Content-Length: %d" % length)
    return lines + list(extra)


def valid_call(host=GAAP, target=b"/", extra=(), body=VALID_BODY, action=b"DescribeProxies"):
    """The bytes of a call (a valid one that the gateway would forward, with the defaults)."""
    return head(call_lines(host, action=action, length=len(body), extra=extra),
                b"POST " + target + b" HTTP/1.1") + body


class RawAnswer:
    """What came back on one connection: the first HTTP answer, what followed it, and how the
    connection ended."""

    def __init__(self):
        self.status = None
        self.reason = b""
        self.headers = []      # [(lowercased name str, value str)]
        self.body = b""
        self.extra = b""       # bytes after the first answer (a second answer: a smuggled call)
        self.closed = False    # the gateway closed the connection after its answer
        self.timed_out = False  # no (complete) answer within READ_TIMEOUT
        self.reset = False     # the connection was reset
        self.send_error = None  # the gateway stopped reading before all was sent
        self.elapsed = 0.0

    def header(self, name):
        values = [v for k, v in self.headers if k == name.lower()]
        return values[0] if values else None

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    def tencent_error(self):
        """(code, message, request_id) when the body is a Tencent-format error, else None."""
        doc = self.json()
        if not isinstance(doc, dict) or not isinstance(doc.get("Response"), dict):
            return None
        resp = doc["Response"]
        err = resp.get("Error")
        if not isinstance(err, dict):
            return None
        return err.get("Code"), err.get("Message", ""), resp.get("RequestId", "")

    def describe(self):
        return ("status=%r reason=%r closed=%r timed_out=%r reset=%r send_error=%r headers=%r "
                "body=%r extra=%r" % (self.status, self.reason, self.closed, self.timed_out,
                                      self.reset, self.send_error, self.headers, self.body[:300],
                                      self.extra[:200]))


def connect(port, source=None, timeout=READ_TIMEOUT, rcvbuf=None, maxseg=None):
    """A TCP connection to 127.0.0.1:port, from source (a loopback address) when given."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if maxseg is not None:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, maxseg)
        if source is not None:
            assert source.startswith("127."), "only loopback sources"
            s.bind((source, 0))
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        raise
    return s


def _send(sock, data, answer):
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError, socket.timeout) as e:
        answer.send_error = type(e).__name__


def _parse_head(raw, answer):
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    m = re.match(r"HTTP/\d\.\d (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise ValueError("not an HTTP status line: %r" % lines[0][:100])
    answer.status = int(m.group(1))
    answer.reason = (m.group(2) or "").encode("latin-1")
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            answer.headers.append((name.strip().lower(), value.strip()))


def _body_complete(buf, answer):
    """Returns (body, rest) once the body is complete, else None."""
    te = (answer.header("transfer-encoding") or "").lower()
    if "chunked" in te:
        pos, body = 0, b""
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(buf[pos:eol].split(b";")[0] or b"0", 16)
            if size == 0:
                end = buf.find(b"\r\n\r\n", eol)
                if end < 0:
                    return None if not buf[eol:].startswith(b"\r\n\r\n") else (body, b"")
                return body, buf[end + 4:]
            if len(buf) < eol + 2 + size + 2:
                return None
            body += buf[eol + 2:eol + 2 + size]
            pos = eol + 2 + size + 2
    length = answer.header("content-length")
    if length is not None:
        n = int(length)
        return (buf[:n], buf[n:]) if len(buf) >= n else None
    if answer.status in (204, 304) or 100 <= (answer.status or 0) < 200:
        return b"", buf
    return None  # read until the connection closes


def read_answer(sock, answer, timeout=READ_TIMEOUT, close_wait=CLOSE_WAIT):
    """Reads the first answer, then waits up to close_wait for the gateway to close (recording
    anything that arrives meanwhile in answer.extra)."""
    deadline = time.monotonic() + timeout
    buf = b""
    eof = False
    while True:
        if answer.status is None and b"\r\n\r\n" in buf:
            raw_head, _, buf = buf.partition(b"\r\n\r\n")
            _parse_head(raw_head, answer)
        if answer.status is not None:
            done = _body_complete(buf, answer)
            if done is not None:
                answer.body, buf = done
                break
        if eof:
            if answer.status is not None:
                answer.body, buf = buf, b""  # delimited by the close
                answer.closed = True
            break
        left = deadline - time.monotonic()
        if left <= 0:
            answer.timed_out = True
            return answer
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            answer.timed_out = True
            return answer
        except ConnectionResetError:
            answer.reset = True
            chunk = b""
        if not chunk:
            eof = True
        buf += chunk
    if answer.status is None:
        return answer  # closed (or reset) without an answer
    answer.extra = buf
    if answer.closed:
        return answer
    deadline = time.monotonic() + close_wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return answer  # still open
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return answer
        except ConnectionResetError:
            answer.reset = True
            chunk = b""
        if not chunk:
            answer.closed = True
            return answer
        answer.extra += chunk


def exchange(port, data, source=None, timeout=READ_TIMEOUT, close_wait=CLOSE_WAIT,
             pieces=None, pause=0.0, shut_wr=False):
    """Sends data (or the byte strings in pieces, pause seconds apart) on a fresh connection,
    half-closes it when shut_wr, and reads one answer; returns a RawAnswer."""
    answer = RawAnswer()
    started = time.monotonic()
    sock = connect(port, source, timeout)
    try:
        for i, piece in enumerate(pieces if pieces is not None else [data]):
            if i and pause:
                time.sleep(pause)
            _send(sock, piece, answer)
            if answer.send_error:
                break
        if shut_wr and not answer.send_error:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        read_answer(sock, answer, timeout, close_wait)
    finally:
        sock.close()
    answer.elapsed = time.monotonic() - started
    return answer


# ---------------------------------------------------------------------------------------------
# The stray catcher: a plain TCP listener that every upstream name but the simulator's leads to.


def _sni(data):
    """The server name of a TLS ClientHello, or None."""
    try:
        if len(data) < 43 or data[0] != 0x16 or data[5] != 0x01:
            return None
        p = 43
        p += 1 + data[p]                                # session id
        p += 2 + int.from_bytes(data[p:p + 2], "big")   # cipher suites
        p += 1 + data[p]                                # compression methods
        end = p + 2 + int.from_bytes(data[p:p + 2], "big")
        p += 2
        while p + 4 <= end:
            kind = int.from_bytes(data[p:p + 2], "big")
            n = int.from_bytes(data[p + 2:p + 4], "big")
            if kind == 0:
                name_len = int.from_bytes(data[p + 7:p + 9], "big")
                return data[p + 9:p + 9 + name_len].decode("ascii", "replace")
            p += 4 + n
    except (IndexError, ValueError):
        return None
    return None


class StrayCatcher:
    """Accepts on 127.0.0.1, records who came (the TLS server name they asked for) and closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.caught = []  # [(time, SNI or first bytes)]
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.1)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(1.0)
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            finally:
                conn.close()
            with self.lock:
                self.caught.append((time.time(), _sni(data) or data[:80]))

    def count(self):
        with self.lock:
            return len(self.caught)

    def take(self):
        """Every visit so far, and forgets them."""
        with self.lock:
            caught, self.caught = self.caught, []
            return caught

    def stop(self):
        self.stopping.set()
        self.thread.join()
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# A simulator, a gateway and the catcher.

SIM_HOSTS = gw.UPSTREAM_HOSTS
TEMPTING_NAMES = ("evil.com", "gaap.tencentcloudapi.com.evil.com", "169.254.169.254")


def server_cert_for(certs, names):
    """certs (a harness.make_certs dict) with a server certificate, signed by its dev CA, for
    exactly these DNS names."""
    d = certs["dir"]
    key = os.path.join(d, "names.key")
    csr = os.path.join(d, "names.csr")
    cert = os.path.join(d, "names.pem")
    ext = os.path.join(d, "names.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName = %s\n" % ", ".join("DNS:" + n for n in names))
    for args in (["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key],
                 ["openssl", "req", "-new", "-key", key, "-subj", "/CN=" + names[0], "-out", csr],
                 ["openssl", "x509", "-req", "-in", csr, "-CA", certs["ca"], "-CAkey",
                  certs["ca_key"], "-CAcreateserial", "-days", "2", "-extfile", ext, "-out",
                  cert]):
        subprocess.run(args, check=True, capture_output=True, timeout=30)
    os.chmod(key, 0o600)
    return dict(certs, server_cert=cert, server_key=key)


def connect_to(sim_port, catcher_port, extra_sim_hosts=(), routes=()):
    """CONNECT_TO entries: the GAAP names (and extra_sim_hosts) to the simulator, routes as given
    ((name, port) pairs), and every other host and port (an empty HOST and PORT match any) to
    the catcher, last, since libcurl takes the first entry that matches."""
    entries = ["%s:443:127.0.0.1:%d" % (name, port) for name, port in routes]
    entries += ["%s:443:127.0.0.1:%d" % (h, sim_port) for h in tuple(SIM_HOSTS) +
                tuple(extra_sim_hosts)]
    # The names a trick would aim at, spelled out (the catch-all after them covers the rest).
    entries += ["%s::127.0.0.1:%d" % (h, catcher_port) for h in TEMPTING_NAMES]
    entries.append("::127.0.0.1:%d" % catcher_port)
    assert len(entries) <= 15, "the gateway takes at most 15 connect_to entries"
    return entries


class Stack:
    """tcgw-sim, a StrayCatcher and a tcgw whose upstream names lead to them."""

    def __init__(self, test, config=None, extra_sim_hosts=(), routes=(), env=None, sim_rate=0,
                 certs=None):
        tmp = tempfile.TemporaryDirectory(prefix="tcgw-hostile-")
        self.dir = tmp.name
        self._cleanups = [tmp.cleanup]
        if certs is None:
            certs = harness.make_certs(os.path.join(self.dir, "certs"))
        if extra_sim_hosts:
            certs = server_cert_for(certs, tuple(SIM_HOSTS) + tuple(extra_sim_hosts))
        self.sim = harness.Simulator().start(os.path.join(self.dir, "sim"),
                                             {gw.DEV_SECRET_ID: gw.DEV_SECRET_KEY},
                                             rate_limit=sim_rate, certs=certs)
        self._cleanups.append(self.sim.stop)
        self.catcher = StrayCatcher()
        self._cleanups.append(self.catcher.stop)
        self.routes = list(routes)
        self.dead = 0  # normal calls that failed in a row
        self.gw = gw.Gateway(self.dir, self.sim.port, self.sim.ca_file, extra_config=config,
                             connect_to=connect_to(self.sim.port, self.catcher.port,
                                                   extra_sim_hosts, routes), env=env)
        try:
            self.gw.start()
        except Exception:
            self.close()
            raise
        self._cleanups.append(self.stop_gateway)
        self.test = test

    @property
    def port(self):
        return self.gw.port

    def pid(self):
        return self.gw.proc.pid

    def stop_gateway(self):
        """SIGTERM and require exit status 0 (sanitizer reports fail), if it still runs."""
        if self.gw.proc is None:
            return
        if self.gw.proc.poll() is not None:
            rc = self.gw.proc.returncode
            self.gw.proc = None
            self.gw.log.close()
            if rc != 0:
                raise AssertionError("tcgw had exited with %d:\n%s" % (rc, tail(self.gw)))
            return
        self.gw.stop()

    def close(self):
        errors = []
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception as e:  # report every failure, after running every cleanup
                errors.append(e)
        if errors:
            raise errors[0]

    def alive_problem(self, host="gaap.tencentcloudapi.com"):
        """None when a normal call is forwarded and answered, else what went wrong. The
        simulator's records are cleared afterwards."""
        self.sim.clear_records()
        if self.gw.proc.poll() is not None:
            self.dead = 2
            return "the gateway exited with %s:\n%s" % (self.gw.proc.returncode, tail(self.gw))
        try:
            a = exchange(self.gw.port, valid_call(host=host.encode()), timeout=ALIVE_TIMEOUT,
                         close_wait=0)
        except OSError as e:
            self.dead += 1
            return "a normal call afterwards failed: %r" % e
        records = self.sim.records()
        self.sim.clear_records()
        if a.status != 200 or a.tencent_error() is not None or len(records) != 1:
            self.dead += 1
            return "a normal call afterwards got %s (%d records)" % (outcome(a), len(records))
        self.dead = 0
        return None

    def gave_up(self):
        """True once normal calls failed twice in a row: the rest of a corpus would only
        accumulate timeouts (ctest's limit is 900 s), so it is reported as not run."""
        return self.dead >= 2

    def alive(self, host="gaap.tencentcloudapi.com"):
        """A normal call is forwarded and answered; the records are cleared afterwards."""
        problem = self.alive_problem(host)
        self.test.assertIsNone(problem, problem)

    def after_case_problems(self, settle=0.2):
        """What went wrong after a refused case: anything forwarded, or the gateway not
        answering a normal call."""
        problems = []
        records, caught = self.forwarded(settle)
        if records:
            problems.append("the simulator received %d call(s): %s" % (
                len(records), [(r.get("host"), r.get("action")) for r in records]))
        if caught:
            problems.append("the gateway connected to a stray upstream: %s" % caught)
        problem = self.alive_problem()
        if problem:
            problems.append(problem)
        return problems

    def forwarded(self, settle=0.2):
        """(simulator records, catcher visits) since the last call, both cleared."""
        time.sleep(settle)
        records = self.sim.records()
        self.sim.clear_records()
        return records, self.catcher.take()

    def assert_nothing_forwarded(self, what, settle=0.2):
        records, caught = self.forwarded(settle)
        self.test.assertEqual(caught, [], "%s: the gateway connected to a stray upstream" % what)
        self.test.assertEqual([(r.get("host"), r.get("action")) for r in records], [],
                              "%s: a refused call reached the simulator" % what)


def tail(g, lines=40):
    try:
        return "\n".join(g.read_log().splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# A TLS upstream with fault modes (the scripted upstream of tests/e2e answers whole messages only).


class FaultUpstream:
    """HTTP/1.1 over TLS on 127.0.0.1. mode(request_bytes) returns one of
        ("answer", status, body)          a complete answer
        ("delay", seconds, status, body)  the same after a pause
        ("raw", bytes)                    these bytes, then close
        ("raw_hold", bytes)               these bytes, then hold the connection
        ("chunked", length, chunk)        a chunked answer of length bytes (chunk repeated)
        ("close",)                        close without answering
        ("never",)                        hold the connection and never answer
        ("stream", length, chunk)         Content-Length: length, then chunk repeated up to length
    Holding and streaming are bounded by stop(); every socket operation has a timeout."""

    def __init__(self, cert, key, mode):
        self.mode = mode
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.requests = []
        self.answered = 0
        self.connections = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def count(self):
        with self.lock:
            return len(self.requests)

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self.stopping.is_set():
            try:
                raw, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _read_request(self, conn, buf):
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            buf += chunk
        head_bytes, _, buf = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head_bytes.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(buf) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            buf += chunk
        return head_bytes + b"\r\n\r\n" + buf[:length], buf[length:]

    def _serve(self, raw):
        raw.settimeout(30)
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        with self.lock:
            self.connections += 1
        buf = b""
        try:
            while not self.stopping.is_set():
                request, buf = self._read_request(conn, buf)
                if request is None:
                    return
                with self.lock:
                    self.requests.append(request)
                what = self.mode(request)
                kind = what[0]
                if kind == "close":
                    return
                if kind == "never":
                    self.stopping.wait(60)
                    return
                if kind == "raw":
                    conn.sendall(what[1])
                    return
                if kind == "raw_hold":
                    conn.sendall(what[1])
                    self.stopping.wait(60)
                    return
                if kind == "delay":
                    if self.stopping.wait(what[1]):
                        return
                    what = ("answer",) + tuple(what[2:])
                    kind = "answer"
                if kind == "answer":
                    status, body = what[1], what[2]
                    conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n" % (status, len(body)) + body)
                elif kind == "stream":
                    length, chunk = what[1], what[2]
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n" % length)
                    sent = 0
                    while sent < length and not self.stopping.is_set():
                        piece = chunk[:length - sent]
                        conn.sendall(piece)
                        sent += len(piece)
                elif kind == "chunked":
                    length, chunk = what[1], what[2]
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n")
                    sent = 0
                    while sent < length and not self.stopping.is_set():
                        piece = chunk[:length - sent]
                        conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                        sent += len(piece)
                    conn.sendall(b"0\r\n\r\n")
                with self.lock:
                    self.answered += 1
        except (OSError, ssl.SSLError, ValueError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def stop(self):
        self.stopping.set()
        self.thread.join()
        self.sock.close()


def response_body(size):
    """A well-formed Tencent answer of exactly size bytes."""
    start = b'{"Response":{"RequestId":"fault-upstream","Pad":"'
    end = b'"}}'
    return start + b"x" * (size - len(start) - len(end)) + end


# ---------------------------------------------------------------------------------------------
# The gateway process as /proc shows it.


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def mib(kib):
    return kib / 1024.0


def report(title, rows):
    """Prints figures so they appear in the ctest log."""
    print("\n== %s ==" % title, flush=True)
    for row in rows:
        print("   " + row, flush=True)


# ---------------------------------------------------------------------------------------------
# Running a table of cases.


def outcome(a):
    """One line saying what came back."""
    if a.timed_out:
        return "no answer (gave up after %.1f s)" % a.elapsed
    if a.status is None:
        return "closed without an answer" + (" (reset)" if a.reset else "")
    err = a.tencent_error()
    if err:
        what = "%d %s" % (a.status, err[0])
    elif isinstance(a.json(), dict) and "Response" in a.json():
        what = "%d answer (%d bytes)" % (a.status, len(a.body))
    else:
        what = "%d (not Tencent's format: %r)" % (a.status, a.body[:40])
    what += ", closed" if a.closed else ", left open"
    if second_answer(a):
        what += ", then a second answer (%d bytes)" % len(a.extra)
    elif a.extra:
        what += ", %d bytes past its Content-Length" % len(a.extra)
    return what


def check_answer(case, a):
    """The reasons the answer a breaks the case's expectation (empty when it meets it)."""
    problems = []
    if a.timed_out:
        return ["no complete answer within %.0f s: the gateway hangs" % READ_TIMEOUT]
    if a.status is None:
        if not case.get("silent_ok"):
            problems.append("the connection closed without an answer")
        return problems
    err = a.tencent_error()
    if err is not None:
        code, _, request_id = err
        if code not in case["code"]:
            problems.append("code %s, expected %s" % (code, " or ".join(case["code"])))
        if a.status not in case["status"]:
            problems.append("HTTP %d, expected %s" % (a.status, " or ".join(
                str(s) for s in case["status"])))
        if not re.match(REQUEST_ID_RE, request_id or ""):
            problems.append("no RequestId")
    elif case.get("mhd") and 400 <= a.status < 500:
        pass  # libmicrohttpd answered the malformed head itself
    elif 200 <= a.status < 300:
        problems.append("HTTP %d success: the call was accepted" % a.status)
    else:
        problems.append("HTTP %d without a Tencent error body" % a.status)
    if not a.closed:
        problems.append("the connection stayed open after the answer")
    if second_answer(a):
        problems.append("%d more bytes followed the answer (a second, smuggled call was "
                        "answered)" % len(a.extra))
    return problems


def second_answer(a):
    """Bytes after the first answer that are an answer themselves. (libmicrohttpd 0.9.75 writes
    the head of its own 400 for a bad Content-Length twice, so its answer runs past its declared
    length: those bytes are its page, not a second answer.)"""
    return b"HTTP/1." in a.extra or b'"Response"' in a.extra


class Tally:
    """Counts and prints each case's outcome, so the ctest log shows the whole corpus."""

    def __init__(self, title):
        self.title = title
        self.rows = []
        self.failed = 0
        self.started = time.monotonic()

    def add(self, name, what, problems):
        if problems:
            self.failed += 1
        self.rows.append("%-4s %-62s %s%s" % ("FAIL" if problems else "ok", name[:62], what,
                                             ("  <- " + "; ".join(problems)) if problems else ""))

    def not_run(self, names):
        for name in names:
            self.failed += 1
            self.rows.append("%-4s %-62s %s" % ("SKIP", name[:62],
                                               "not run: the gateway stopped answering"))

    def print(self):
        report("%s: %d cases, %d as expected, %d not, %.1f s" % (
            self.title, len(self.rows), len(self.rows) - self.failed, self.failed,
            time.monotonic() - self.started), self.rows)


TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
              "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def tcp_sockets(pid):
    """The TCP sockets the process holds open: [(local port, remote port, state)]."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                out.append((local_port, remote_port, TCP_STATES.get(fields[3], fields[3])))
    return out
