"""Idle memory of tcgw beside the floor its libraries set (bench/floor.c), and the memory that
libcurl 7.88 and OpenSSL keep per call in flight, whatever the gateway does around them."""
import subprocess
import time

import benchlib as bl

KIB = 1024
UPLOAD_BUFFER_MIN = 16 * KIB  # libcurl's least CURLOPT_UPLOAD_BUFFERSIZE, held by each transfer


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
    per_h2 = easy + UPLOAD_BUFFER_MIN
    per_h1 = per_h2 + ctx + ssl
    n = slow_conns
    lines += [
        "",
        "target: idle ≤ 10 MiB %s (tcgw %s; its libraries alone %s)" % (
            "met" if t["VmRSS"] <= 10 * KIB else "**not met**", _mib(t["VmRSS"]),
            _mib(f["rss_kib"])),
        "",
        "What libcurl 7.88 and OpenSSL 3 hold per call in flight, measured by bench/floor.c: "
        "an easy handle (%s bytes) and its upload buffer (%s bytes, libcurl's least); over "
        "HTTP/1.1 also one connection each, for which libcurl makes its own SSL_CTX (%s bytes) "
        "and SSL (%s bytes). At %s calls in flight that is, before any of tcgw's own memory "
        "and before TLS buffers, sockets or HTTP/2 streams: %s over HTTP/1.1 and %s over "
        "HTTP/2, on top of the libraries' %s."
        % (bl_int(easy), bl_int(UPLOAD_BUFFER_MIN), bl_int(ctx), bl_int(ssl), bl_int(n),
           _mib(n * per_h1 / KIB), _mib(n * per_h2 / KIB), _mib(f["rss_kib"]))]
    return lines


def bl_int(v):
    return "{:,}".format(int(v))
