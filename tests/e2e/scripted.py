"""A scripted TLS upstream for the cases the GAAP simulator never produces: a chosen status and
exact body bytes, a redirect, a request read but never answered. It counts connections and
requests so tests can assert on connection reuse and on what was (not) sent."""
import socket
import ssl
import threading


class ScriptedUpstream:
    """HTTP/1.1 over TLS on 127.0.0.1 with the given certificate; one script for every request.

    script(request_bytes) returns (status, reason, headers dict, body bytes), None to read the
    request and never answer, or "close" to read it and close the connection without answering.
    """

    def __init__(self, cert, key, script):
        self.script = script
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.requests = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.held = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self.stopping.is_set():
            try:
                raw, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw):
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        with self.lock:
            self.connections += 1
            self.held.append(conn)
        buf = b""
        try:
            while not self.stopping.is_set():
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(buf) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                request, buf = head + b"\r\n\r\n" + buf[:length], buf[length:]
                with self.lock:
                    self.requests.append(request)
                answer = self.script(request)
                if answer == "close":
                    return
                if answer is None:
                    self.stopping.wait()
                    return
                status, reason, headers, body = answer
                lines = ["HTTP/1.1 %d %s" % (status, reason), "Content-Length: %d" % len(body)]
                lines += ["%s: %s" % kv for kv in headers.items()]
                conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()

    def stop(self):
        self.stopping.set()
        self.thread.join()
        self.sock.close()
        with self.lock:
            for c in self.held:
                try:
                    c.close()
                except OSError:
                    pass


def make_cert_for(dirpath, name, ca_cert, ca_key):
    """A server certificate for name alone, signed by the dev CA: trusted, but for another host."""
    import os
    import subprocess
    key = os.path.join(dirpath, name + ".key")
    csr = os.path.join(dirpath, name + ".csr")
    cert = os.path.join(dirpath, name + ".pem")
    ext = os.path.join(dirpath, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName = DNS:%s\n" % name)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=30)  # noqa: E731
    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
    run("openssl", "req", "-new", "-key", key, "-subj", "/CN=" + name, "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
        "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert)
    return cert, key
