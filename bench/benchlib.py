"""Shared parts of tcgw's benchmarks: /proc readers, the nginx upstream and reference proxy, the
SDK proxy, the gateway, and wrk. Python standard library only; everything listens on 127.0.0.1.

Every process is started with a pid recorded through note_pid() (bench/run.sh kills what is
left of those, and only those, if the driver itself dies) and stopped by its own pid.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import gw  # noqa: E402
import harness  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "gaap.tencentcloudapi.com"
SEED_BODY = gw.SEED_BODY
SEED_HEADERS = {"Host": HOST, "Content-Type": "application/json",
                "X-TC-Action": "ModifyProxyConfiguration", "X-TC-Version": "2018-05-29"}
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
NODE_SDK_DIR = os.path.join(ROOT, "tests", "node", "node_modules", "tencentcloud-sdk-nodejs-common")
PROXY_ENV_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                  "ALL_PROXY", "no_proxy", "NO_PROXY")

_pidfile = None


def set_pidfile(path):
    global _pidfile
    _pidfile = path


def note_pid(pid):
    if _pidfile:
        with open(_pidfile, "a") as f:
            f.write("%d\n" % pid)


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in PROXY_ENV_VARS}
    env.update(extra or {})
    return env


def free_port():
    return harness.free_port()


def wait_port(port, proc, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited at start with status %s" % (what, proc.returncode))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s is not listening on 127.0.0.1:%d after %.0f s" % (what, port, timeout))


def stop_process(proc, sig=signal.SIGTERM, timeout=20.0):
    """Stops one process we started, by its pid; returns its exit status."""
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    try:
        proc.send_signal(sig)
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


# ---------------------------------------------------------------------------------------------
# /proc


def _read(path):
    with open(path) as f:
        return f.read()


def children_map():
    """{ppid: [pid, ...]} of every process now."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            data = _read("/proc/%s/stat" % name)
        except OSError:
            continue
        fields = data[data.rindex(")") + 2:].split()
        out.setdefault(int(fields[1]), []).append(int(name))
    return out


def tree(pid):
    """pid and all its descendants."""
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def proc_status(pid):
    """{'VmRSS': kB, 'VmHWM': kB, 'Threads': n} or None when gone."""
    out = {}
    try:
        for line in _read("/proc/%d/status" % pid).splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    except (OSError, ValueError):
        return None
    return out


def proc_ticks(pid):
    """utime + stime of the process (all its threads), in clock ticks; None when gone."""
    try:
        data = _read("/proc/%d/stat" % pid)
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def system_ticks():
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return total - idle, total


def established_to(port):
    """Local endpoints of ESTABLISHED IPv4 connections to 127.0.0.1:port."""
    peer = "0100007F:%04X" % port
    out = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[2] == peer and fields[3] == "01":
                    out.add(fields[1])
    except OSError:
        pass
    return out


def cpu_model():
    try:
        for line in _read("/proc/cpuinfo").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


class Group:
    """The processes of one contender: root pids and their descendants (nginx workers)."""

    def __init__(self, name, roots):
        self.name = name
        self.roots = list(roots)

    def pids(self):
        out = []
        for r in self.roots:
            out.extend(tree(r))
        return out

    def ticks(self):
        """{pid: ticks}."""
        out = {}
        for p in self.pids():
            t = proc_ticks(p)
            if t is not None:
                out[p] = t
        return out

    def thread_ticks(self):
        """{tid: (comm, ticks)} over every thread of every process of the group."""
        out = {}
        for p in self.pids():
            try:
                tids = os.listdir("/proc/%d/task" % p)
            except OSError:
                continue
            for tid in tids:
                try:
                    data = _read("/proc/%d/task/%s/stat" % (p, tid))
                except OSError:
                    continue
                comm = data[data.index("(") + 1:data.rindex(")")]
                fields = data[data.rindex(")") + 2:].split()
                out[int(tid)] = (comm, int(fields[11]) + int(fields[12]))
        return out

    def memory(self):
        """(sum of VmRSS, sum of VmHWM) in kB over the live processes."""
        rss = hwm = 0
        for p in self.pids():
            st = proc_status(p)
            if st:
                rss += st.get("VmRSS", 0)
                hwm += st.get("VmHWM", 0)
        return rss, hwm


def cpu_seconds(before, after):
    """CPU seconds between two Group.ticks() readings (a process new since counts from 0)."""
    return sum(t - before.get(p, 0) for p, t in after.items()) / CLK_TCK


class Sampler(threading.Thread):
    """Samples the memory of groups every interval until stopped: the maxima of the summed VmRSS
    and of the summed VmHWM, and (with port) connections established to the upstream port."""

    def __init__(self, groups, upstream_port=None, interval=0.1):
        super().__init__(daemon=True)
        self.groups = groups
        self.upstream_port = upstream_port
        self.interval = interval
        self.rss_max = {g.name: 0 for g in groups}
        self.hwm_max = {g.name: 0 for g in groups}
        self.upstream_seen = set()
        self.upstream_max = 0
        self._stop_event = threading.Event()

    def sample(self):
        for g in self.groups:
            rss, hwm = g.memory()
            self.rss_max[g.name] = max(self.rss_max[g.name], rss)
            self.hwm_max[g.name] = max(self.hwm_max[g.name], hwm)
        if self.upstream_port is not None:
            conns = established_to(self.upstream_port)
            self.upstream_seen |= conns
            self.upstream_max = max(self.upstream_max, len(conns))

    def run(self):
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)
        self.sample()

    def stop(self):
        self._stop_event.set()
        self.join()


# ---------------------------------------------------------------------------------------------
# nginx: the upstream (Tencent Cloud's stand-in) and the reference proxy


NGINX_COMMON = """\
worker_processes {workers};
worker_rlimit_nofile 65536;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 16384; }}
"""

NGINX_HTTP_COMMON = """\
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    default_type application/json;
"""

# The upstream's answer: a GAAP success. RequestId names the protocol the request came over
# (HTTP/1.1 or HTTP/2.0) and nginx's own random request id, so a proxy cannot pass off a stale
# or made-up answer, and check.lua can tell which upstream protocol each contender used.
UPSTREAM_BODY = '{"Response":{"RequestId":"$server_protocol-$request_id"}}'


class Nginx:
    def __init__(self, workdir, name, port, workers="auto"):
        self.dir = os.path.join(workdir, name)
        self.name = name
        self.port = port
        self.workers = workers
        self.proc = None
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        self.conf_path = os.path.join(self.dir, "nginx.conf")

    def write(self, text):
        with open(self.conf_path, "w") as f:
            f.write(text)

    def start(self):
        cmd = ["nginx", "-p", self.dir + "/", "-c", self.conf_path, "-e",
               os.path.join(self.dir, "error.log"), "-g", "daemon off;"]
        self.log = open(os.path.join(self.dir, "stderr.log"), "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=clean_env())
        note_pid(self.proc.pid)
        try:
            wait_port(self.port, self.proc, "nginx (%s)" % self.name)
        except RuntimeError as e:
            self.stop()
            raise RuntimeError("%s:\n%s" % (e, self.errors()))
        return self

    def errors(self):
        out = ""
        for f in ("stderr.log", "error.log"):
            try:
                out += _read(os.path.join(self.dir, f))[-3000:]
            except OSError:
                pass
        return out

    def stop(self):
        if self.proc is None:
            return
        # SIGTERM: nginx's fast shutdown; the master waits for its workers.
        stop_process(self.proc, signal.SIGTERM)
        self.proc = None
        self.log.close()


def upstream_conf(dir, port, certs, delay_s=0.0, http2=False, workers="auto"):
    """nginx as gaap.tencentcloudapi.com over TLS: a constant GAAP success, after delay_s."""
    if delay_s > 0:
        if not os.path.exists(ECHO_MODULE):
            raise RuntimeError("the delayed upstream needs nginx's echo module (%s): apt-get "
                               "install libnginx-mod-http-echo" % ECHO_MODULE)
        content = "echo_sleep %.3f;\n            echo -n '%s';" % (delay_s, UPSTREAM_BODY)
        head = "load_module %s;\n" % ECHO_MODULE
    else:
        content = "return 200 '%s';" % UPSTREAM_BODY
        head = ""
    return head + NGINX_COMMON.format(workers=workers, dir=dir) + """\
http {{
{common}
    ssl_session_cache shared:SSL:10m;
    server {{
        listen 127.0.0.1:{port} ssl{h2} backlog=4096;
        server_name {host};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            {content}
        }}
    }}
}}
""".format(common=NGINX_HTTP_COMMON.format(dir=dir), port=port, h2=" http2" if http2 else "",
           host=HOST, cert=certs["server_cert"], key=certs["server_key"], content=content)


def proxy_conf(dir, port, upstream_port, ca_file, keepalive=64, workers="auto"):
    """nginx as a plain reverse proxy: HTTP in, verified TLS with kept-alive connections out."""
    return NGINX_COMMON.format(workers=workers, dir=dir) + """\
http {{
{common}
    upstream tencent {{
        server 127.0.0.1:{up};
        keepalive {keepalive};
        keepalive_requests 10000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass https://tencent;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host {host};
            proxy_ssl_server_name on;
            proxy_ssl_name {host};
            proxy_ssl_verify on;
            proxy_ssl_verify_depth 2;
            proxy_ssl_trusted_certificate {ca};
            proxy_ssl_session_reuse on;
            proxy_read_timeout 30s;
        }}
    }}
}}
""".format(common=NGINX_HTTP_COMMON.format(dir=dir), up=upstream_port, keepalive=keepalive,
           port=port, host=HOST, ca=ca_file)


# ---------------------------------------------------------------------------------------------
# the SDK proxy (Node) and the gateway


class SdkProxy:
    def __init__(self, workdir, upstream_port, ca_file):
        self.dir = os.path.join(workdir, "sdk-proxy")
        os.makedirs(self.dir, exist_ok=True)
        self.upstream_port = upstream_port
        self.ca_file = ca_file
        self.proc = None
        self.port = None

    def start(self):
        env = clean_env({"NODE_EXTRA_CA_CERTS": self.ca_file,
                         "TCGW_BENCH_SECRET_ID": gw.DEV_SECRET_ID,
                         "TCGW_BENCH_SECRET_KEY": gw.DEV_SECRET_KEY,
                         "TCGW_BENCH_SDK_DIR": NODE_SDK_DIR})
        self.err = open(os.path.join(self.dir, "stderr.log"), "wb")
        self.proc = subprocess.Popen(
            ["node", os.path.join(HERE, "sdk-proxy.js"), "--port", "0", "--upstream-port",
             str(self.upstream_port)], stdout=subprocess.PIPE, stderr=self.err,
            stdin=subprocess.DEVNULL, env=env)
        note_pid(self.proc.pid)
        line = self.proc.stdout.readline().decode(errors="replace").strip()
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError("sdk-proxy did not start (%r): %s"
                               % (line, _read(os.path.join(self.dir, "stderr.log"))[-2000:]))
        self.port = int(line.split()[1])
        return self

    def stop(self):
        if self.proc is None:
            return
        stop_process(self.proc)
        self.proc.stdout.close()
        self.err.close()
        self.proc = None


class Tcgw:
    """tcgw serve with its own master key and credential (tests/e2e/gw.py's Gateway)."""

    def __init__(self, workdir, upstream_port, ca_file, extra_config, wrapper=None,
                 identity="listener"):
        """identity: "listener" (calls without identity are a caller allowed everything, as a
        sidecar's) or "token" (a bearer token of a caller under policies/capacity-bot.json).
        A binary from before callers and policies gets neither."""
        self.dir = os.path.join(workdir, "tcgw")
        os.makedirs(self.dir, exist_ok=True)
        self.access = tcgw_supports("callers_file")
        self.identity = identity if self.access else "none"
        kw = {}
        if self.identity == "token":
            with open(os.path.join(gw.repo_root(), "policies", "capacity-bot.json")) as f:
                kw = {"callers": {}, "unauthenticated_caller": None,
                      "policies": {"capacity-bot": f.read()}}
        self.gw = gw.Gateway(self.dir, upstream_port, ca_file, extra_config=extra_config,
                             access=self.access, **kw)
        self.wrapper = wrapper or []
        self.proc = None
        self.port = None
        self.headers = {}  # what every call adds: the caller's Authorization

    def start(self, timeout=20.0):
        g = self.gw
        if not os.path.exists(g.store_path):
            g.provision()
        g.write_config()
        self.log = open(g.log_path, "wb")
        self.proc = subprocess.Popen(self.wrapper + [gw.tcgw_bin(), "serve", "--config",
                                                     g.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=clean_env())
        note_pid(self.proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                self.log.close()
                raise RuntimeError("tcgw exited at start:\n" + g.read_log()[-3000:])
            m = re.search(r"event=listening .*?port=(\d+)", g.read_log())
            if m:
                self.port = int(m.group(1))
                if self.identity == "token":
                    self.issue_token()
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("tcgw did not start:\n" + g.read_log()[-3000:])

    def issue_token(self):
        gw.run_tcgw(["callers", "remove", "bench-bot", "--config", self.gw.config_path],
                    check=False)
        out = gw.run_tcgw(["callers", "add", "bench-bot", "--policy", "capacity-bot",
                           "--config", self.gw.config_path]).stdout.decode()
        token = gw.token_of(out)
        self.gw.proc = self.proc
        self.gw.reload()
        self.headers = {"Authorization": "Bearer " + token}

    def config(self):
        with open(self.gw.config_path) as f:
            return json.load(f)

    def stop(self):
        if self.proc is None:
            return
        rc = stop_process(self.proc, timeout=40.0)
        self.log.close()
        self.proc = None
        if rc not in (0, None):
            raise RuntimeError("tcgw exited with %s:\n%s" % (rc, self.gw.read_log()[-3000:]))


# ---------------------------------------------------------------------------------------------
# one call, to check a contender before loading it


def check_call(port, tls_ca=None, timeout=15, headers=None):
    """POSTs the seed call; returns (ok, description). tls_ca: HTTPS with that CA."""
    try:
        if tls_ca:
            r = harness.https_post(port, HOST, dict(SEED_HEADERS, **(headers or {})), SEED_BODY,
                                   tls_ca, timeout=timeout)
            status, body = r.status, r.body
        else:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            try:
                conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
                for k, v in dict(SEED_HEADERS, **(headers or {})).items():
                    conn.putheader(k, v)
                conn.putheader("Content-Length", str(len(SEED_BODY)))
                conn.endheaders(SEED_BODY)
                resp = conn.getresponse()
                status, body = resp.status, resp.read()
            finally:
                conn.close()
    except OSError as e:
        return False, "no answer: %s" % e
    text = body.decode(errors="replace")
    ok = 200 <= status < 300 and '"RequestId"' in text and '"Error"' not in text
    return ok, "HTTP %d %s" % (status, text[:300])


# ---------------------------------------------------------------------------------------------
# wrk


def parse_wrk(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("bench: "):
            key, _, value = line[len("bench: "):].partition(" ")
            out[key] = value
    return out


def run_wrk(url, conns, seconds, threads=2, timeout_s=10, env=None, registry=None):
    """Runs wrk with check.lua; returns (figures dict, full output, command)."""
    threads = max(1, min(threads, conns))
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % max(1, int(round(seconds))),
           "--timeout", "%ds" % timeout_s, "-s", os.path.join(HERE, "check.lua"), url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=clean_env(env), text=True)
    note_pid(proc.pid)
    if registry is not None:
        registry.append(proc)
    try:
        out, _ = proc.communicate(timeout=seconds + timeout_s + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        out += "\n(wrk did not finish in time and was killed)"
    return parse_wrk(out), out, cmd


def tool_version(cmd, pattern=r"(\d+\.\d+[.\d]*)"):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        m = re.search(pattern, out.stdout + out.stderr)
        return m.group(1) if m else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def sdk_version():
    try:
        with open(os.path.join(NODE_SDK_DIR, "package.json")) as f:
            return json.load(f).get("version", "?")
    except OSError:
        return "?"


_tcgw_strings = None


def tcgw_supports(key):
    """True when the tcgw binary knows the configuration key (its name is in the binary)."""
    global _tcgw_strings
    if _tcgw_strings is None:
        try:
            with open(gw.tcgw_bin(), "rb") as f:
                _tcgw_strings = f.read()
        except OSError:
            _tcgw_strings = b""
    return key.encode() in _tcgw_strings


def have(cmd):
    return shutil.which(cmd) is not None
