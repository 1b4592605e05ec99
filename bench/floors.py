"""What tcgw's libraries cost whatever the gateway does around them: idle memory beside the
floor its libraries set and the memory libcurl 7.88 and OpenSSL keep per call in flight
(bench/floor.c), and the CPU time libcurl alone takes per call (bench/curl_alone.c)."""
import subprocess
import time

import benchlib as bl

KIB = 1024
UPLOAD_BUFFER_MIN = 16 * KIB  # libcurl's least CURLOPT_UPLOAD_BUFFERSIZE, held by each transfer
DOWNLOAD_BUFFER = 4 * KIB  # the CURLOPT_BUFFERSIZE tcgw gives each easy handle


def _status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0])
    return out


def run_floor(floor_bin):
    """The figures tcgw-bench-floor prints, as one dict of ints."""
    p = subprocess.run([floor_bin], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (floor_bin, p.returncode, p.stderr[-1000:]))
    out = {}
    for line in p.stdout.splitlines():
        if line.startswith("floor: "):
            out.update({k: int(v) for k, v in
                        (kv.split("=", 1) for kv in line[len("floor: "):].split())})
    return out


def idle_tcgw(workdir, upstream_port, ca_file, cfg, identity, settle_s=2.0):
    """VmRSS, RssAnon and RssFile (kB) of a fresh tcgw serve, settle_s after it listens."""
    t = bl.Tcgw(workdir, upstream_port, ca_file, cfg, identity=identity)
    t.start()
    try:
        time.sleep(settle_s)
        return _status(t.proc.pid)
    finally:
        t.stop()


def measure(args, certs, workdir, cfg):
    """{'tcgw': {...}, 'floor': {...}} or {'problems': [...]}."""
    try:
        out = {"tcgw": idle_tcgw(workdir, bl.free_port(), certs["ca"], cfg, args.identity)}
        if args.floor_bin:
            out["floor"] = run_floor(args.floor_bin)
        return out
    except Exception as e:  # noqa: BLE001 - reported, the load runs go ahead
        return {"problems": [str(e)[:1500]]}


def _mib(kib):
    return "%.1f MiB" % (kib / 1024)


def markdown(mem, slow_conns):
    """The report's section on memory, as lines."""
    if "problems" in mem:
        return ["(not measured: %s)" % "; ".join(mem["problems"])]
    t = mem["tcgw"]
    lines = ["| process | RSS | anonymous | file-backed (libraries, the binary) |",
             "|---|--:|--:|--:|",
             "| tcgw serve, idle, 2 s after it listens (the benchmark's configuration) "
             "| %s | %s | %s |" % (_mib(t["VmRSS"]), _mib(t["RssAnon"]), _mib(t["RssFile"]))]
    f = mem.get("floor")
    if not f:
        return lines + ["", "target: idle ≤ 10 MiB %s" % (
            "met" if t["VmRSS"] <= 10 * KIB else "**not met**")]
    lines.append("| bench/floor.c: loads tcgw's libraries, calls one function of each, "
                 "curl_global_init and sodium_init, nothing else | %s | %s | %s |"
                 % (_mib(f["rss_kib"]), _mib(f["anon_kib"]), _mib(f["file_kib"])))
    easy, ctx, ssl = f["curl_easy_bytes"], f["ssl_ctx_bytes"], f["ssl_bytes"]
    per_h2 = easy + UPLOAD_BUFFER_MIN + DOWNLOAD_BUFFER
    per_h1 = per_h2 + ctx + ssl
    n = slow_conns
    lines += [
        "",
        "target: idle ≤ 10 MiB %s (tcgw %s; its libraries alone %s)" % (
            "met" if t["VmRSS"] <= 10 * KIB else "**not met**", _mib(t["VmRSS"]),
            _mib(f["rss_kib"])),
        "",
        "What libcurl 7.88 and OpenSSL 3 hold per call in flight, measured by bench/floor.c: "
        "an easy handle (%s bytes), its upload buffer (%s bytes, libcurl's least) and its "
        "answer buffer (%s bytes, as tcgw sets it); over "
        "HTTP/1.1 also one connection each, for which libcurl makes its own SSL_CTX (%s bytes) "
        "and SSL (%s bytes). At %s calls in flight that is, before any of tcgw's own memory "
        "and before TLS buffers, sockets or HTTP/2 streams: %s over HTTP/1.1 and %s over "
        "HTTP/2, on top of the libraries' %s."
        % (bl_int(easy), bl_int(UPLOAD_BUFFER_MIN), bl_int(DOWNLOAD_BUFFER), bl_int(ctx), bl_int(ssl), bl_int(n),
           _mib(n * per_h1 / KIB), _mib(n * per_h2 / KIB), _mib(f["rss_kib"]))]
    return lines


def bl_int(v):
    return "{:,}".format(int(v))


def run_curl_alone(curl_bin, upstream_port, ca_file, conns, seconds):
    """tcgw-bench-curl against the upstream: {'calls', 'ok', 'cpu_s', 'wall_s', 'rps',
    'cpu_us_per_call', 'cmd'} or {'problems': [...]}."""
    cmd = [curl_bin, "--port", str(upstream_port), "--ca", ca_file, "--conns", str(conns),
           "--seconds", str(seconds)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        line = next((x for x in p.stdout.splitlines() if x.startswith("curl: ")), None)
        if p.returncode != 0 or line is None:
            raise RuntimeError("%s failed (%d): %s %s" % (curl_bin, p.returncode, p.stdout[-500:],
                                                          p.stderr[-1000:]))
        d = {k: float(v) for k, v in (kv.split("=", 1) for kv in line[len("curl: "):].split())}
        d["rps"] = d["ok"] / d["wall_s"] if d["wall_s"] > 0 else 0.0
        d["cpu_us_per_call"] = 1e6 * d["cpu_s"] / d["ok"] if d["ok"] > 0 else None
        d["cmd"] = " ".join(cmd)
        return d
    except Exception as e:  # noqa: BLE001 - reported, the rest goes ahead
        return {"problems": [str(e)[:1500]]}


def cpu_markdown(rows, results):
    """The report's section on CPU per call: nginx proxy, libcurl alone, tcgw, per scenario."""
    lines = ["| scenario | nginx proxy, whole proxy | libcurl alone, the upstream half "
             "(tcgw-bench-curl, one thread) | tcgw, whole gateway |",
             "|---|--:|--:|--:|"]
    for name, c in rows:
        def per_call(contender):
            for r in results:
                if (r["scenario"] == name and r["contender"] == contender
                        and r.get("cpu_s_per_10k") is not None):
                    return "%.1f µs" % (r["cpu_s_per_10k"] * 100)
            return "-"
        curl = ("%.1f µs (%s calls/s on one core)" % (c["cpu_us_per_call"], bl_int(c["rps"]))
                if "problems" not in c and c.get("cpu_us_per_call") else
                "(failed: %s)" % "; ".join(c.get("problems", ["no call"])))
        lines.append("| %s | %s | %s | %s |" % (name, per_call("nginx"), curl, per_call("tcgw")))
    lines += ["", "CPU time (user + system) per correct answer. libcurl alone sends the same "
              "call to the same upstream the way tcgw drives libcurl (epoll and "
              "curl_multi_socket_action, reused easy handles, kept-alive verified TLS, the "
              "same headers), with as many transfers in flight as the scenario has "
              "connections, and does nothing else: no server side, no signing. What it takes "
              "is the least tcgw can take per call while libcurl carries its calls."]
    if rows and "cmd" in rows[0][1]:
        lines += ["", "`%s`" % rows[0][1]["cmd"]]
    return lines
