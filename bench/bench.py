#!/usr/bin/env python3
"""tcgw side-by-side benchmark (run it with `bash bench/run.sh`, which installs and builds first).

Contenders, each receiving the same unsigned seed call over HTTP/1.1 from wrk on loopback and
answered by the same upstream:
  upstream   the upstream directly: nginx over TLS as gaap.tencentcloudapi.com (dev CA),
             answering a constant GAAP success; wrk talks TLS to it. The limit.
  nginx      nginx proxy_pass to that upstream over verified TLS with upstream keep-alive, no
             signing: the reference proxy.
  sdk        bench/sdk-proxy.js: the official Node SDK's CommonClient behind a small HTTP server,
             with a keep-alive agent: what one would write instead of tcgw.
  tcgw       the gateway (Release), validating, signing (TC3-HMAC-SHA256) and forwarding over
             verified TLS with libcurl, with its per-call log line and default key protection.
  tcgw-spread  (only above --spread-threshold connections) tcgw again with wrk's connections
             spread over --spread-sources loopback source addresses (an LD_PRELOAD shim), to show
             what tcgw does past a per-client-address connection limit.

Scenarios: fast-<N> (upstream answers at once, over HTTP/1.1) for each of --fast-conns, and
slow-h1 / slow-h2 (upstream answers after --slow-delay seconds, over HTTP/1.1 / HTTP/2 offered
by ALPN) at --slow-conns. For each contender and scenario: correct answers per second, latency
percentiles, errors (socket errors, non-2xx), wrong answers (check.lua looks at every body),
peak RSS (sum of VmHWM over the contender's processes, each started fresh per scenario), CPU
seconds per 10,000 calls (utime+stime from /proc), the upstream protocol and connections used.
Also, when given, the microbenchmarks (--micro-bin) and the callgrind profile (--callgrind-calls).

Output: a Markdown report on stdout and in <results-dir>/latest.md, the raw figures in
latest.json and a chart latest.png (gnuplot). Exit status 1 when a contender gave no correct
answer or any wrong answer (and, with --smoke, any error at all).
"""
import argparse
import datetime
import json
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time

import benchlib as bl
import floors

CONTENDER_LABELS = {
    "upstream": "upstream directly (nginx, TLS)",
    "nginx": "nginx proxy_pass (TLS, keep-alive)",
    "sdk": "SDK proxy (Node CommonClient)",
    "tcgw": "tcgw",
    "tcgw-spread": "tcgw, wrk from {n} source addresses",
}


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    raise Interrupted("signal %d" % signum)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# scenarios


def scenarios(args):
    out = []
    for c in [int(x) for x in args.fast_conns.split(",") if x]:
        out.append({"name": "fast-%d" % c, "title": "fast upstream, %d connections" % c,
                    "conns": c, "delay": 0.0, "http2": False, "bound": None})
    for proto in ("h1", "h2"):
        if "slow-" + proto not in args.scenarios:
            continue
        c = args.slow_conns
        out.append({"name": "slow-%s-%d" % (proto, c),
                    "title": "upstream answering after %d ms, %d connections, upstream over %s"
                             % (args.slow_delay * 1000, c,
                                "HTTP/2" if proto == "h2" else "HTTP/1.1"),
                    "conns": c, "delay": args.slow_delay, "http2": proto == "h2",
                    "bound": c / args.slow_delay})
    if "fast" not in args.scenarios:
        out = [s for s in out if not s["name"].startswith("fast-")]
    return out


def tcgw_config(args, conns):
    """tcgw's configuration for a scenario of conns connections: no limit of its own below the
    load (keys the binary does not know are left out)."""
    threads = max(1, args.gw_threads)
    # libmicrohttpd gives each server thread max_connections / threads.
    max_conns = min(100000, max(4096, (conns + 256) * threads))
    cfg = {
        "threads": args.gw_threads,
        "max_connections": max_conns,
        "upstream": {"max_host_connections": max(256, conns), "timeout_ms": 30000,
                     "connect_timeout_ms": 5000},
    }
    if bl.tcgw_supports("max_connections_per_address") and not args.keep_per_address_limit:
        cfg["max_connections_per_address"] = max_conns
    if args.resident_keys:
        if not bl.tcgw_supports("vault_keys_resident"):
            raise SystemExit("--resident-keys: this tcgw has no vault_keys_resident key")
        cfg["vault_keys_resident"] = True
    if bl.tcgw_supports("max_calls_in_flight"):
        cfg["max_calls_in_flight"] = max(4096, 2 * conns)
    extra = json.loads(args.tcgw_config) if args.tcgw_config else {}
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    return cfg


def audit_config(workdir):
    """The "audit" section of the tcgw-audit contender: a fresh log, group commit on the
    benchmark's disk (fsync for real), sealed every second."""
    d = os.path.join(workdir, "audit")
    os.makedirs(d, exist_ok=True)
    sec, pub = os.path.join(d, "audit.key"), os.path.join(d, "audit.pub")
    if not os.path.exists(sec):
        subprocess.run([bl.gw.tcgw_bin(), "audit", "keygen", "--secret-key", sec,
                        "--public-key", pub], check=True, capture_output=True)
    log_path = os.path.join(d, "audit.log")
    for name in os.listdir(d):
        if name.startswith("audit.log"):
            os.unlink(os.path.join(d, name))
    return {"file": log_path, "signing_key_file": sec, "public_key_file": pub,
            "sign_interval_ms": 1000}


def audit_stats(log_text):
    """The audit writer's counters from its stop line (event=audit_stats)."""
    m = re.findall(r"event=audit_stats (.*)", log_text)
    if not m:
        return None
    fields = dict(f.split("=", 1) for f in m[-1].split() if "=" in f)
    return {k: float(v) for k, v in fields.items() if re.fullmatch(r"[\d.]+", v)}


# ---------------------------------------------------------------------------------------------
# one measured run


def measure(args, sc, name, url, group, upstream_group, upstream_port, wrk_env=None,
            registry=None):
    conns = sc["conns"]
    if args.warmup > 0:
        bl.run_wrk(url, conns, args.warmup, args.wrk_threads, args.timeout, wrk_env, registry)
    time.sleep(0.3)
    sampler = bl.Sampler([group, upstream_group], upstream_port)
    t0 = group.ticks()
    th0 = group.thread_ticks()
    u0 = upstream_group.ticks()
    s0 = bl.system_ticks()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.monotonic()
    sampler.start()
    figures, output, cmd = bl.run_wrk(url, conns, args.duration, args.wrk_threads, args.timeout,
                                      wrk_env, registry)
    wall = time.monotonic() - w0
    t1 = group.ticks()
    th1 = group.thread_ticks()
    u1 = upstream_group.ticks()
    s1 = bl.system_ticks()
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk: the only child reaped meanwhile
    sampler.stop()
    rss_now, hwm_now = group.memory()
    r = {"scenario": sc["name"], "contender": name, "conns": conns, "cmd": " ".join(cmd),
         "wall_s": wall}
    if "requests" not in figures:
        r["problems"] = ["wrk printed no figures: " + output[-1500:]]
        return r
    num = {k: float(v) for k, v in figures.items() if re.fullmatch(r"-?[\d.]+", v)}
    dur = num["duration_s"]
    ok = int(num["ok"])
    sock = {k[5:]: int(num[k]) for k in ("sock_connect", "sock_read", "sock_write",
                                         "sock_timeout")}
    cpu = bl.cpu_seconds(t0, t1)
    ucpu = bl.cpu_seconds(u0, u1)
    busy = (s1[0] - s0[0]) / max(1, s1[1] - s0[1])
    r.update({
        "duration_s": dur, "requests": int(num["requests"]), "ok": ok,
        "rps_ok": ok / dur if dur else 0.0, "rps_all": num["requests"] / dur if dur else 0.0,
        "wrong": int(num["wrong"]), "non2xx": int(num["non2xx"]), "sock": sock,
        "errors": sum(sock.values()) + int(num["non2xx"]),
        "p50_ms": num["p50_us"] / 1000, "p90_ms": num["p90_us"] / 1000,
        "p99_ms": num["p99_us"] / 1000, "p999_ms": num["p99.9_us"] / 1000,
        "max_ms": num["max_us"] / 1000, "mean_ms": num["mean_us"] / 1000,
        "upstream_h1": int(num["upstream_h1"]), "upstream_h2": int(num["upstream_h2"]),
        "first_bad": figures.get("first_bad", ""),
        "cpu_s": cpu, "cpu_pct": cpu / wall * 100 if wall else 0.0,
        "cpu_s_per_10k": cpu / ok * 10000 if ok else None,
        "upstream_cpu_pct": ucpu / wall * 100 if wall else 0.0,
        "machine_busy_pct": busy * 100,
        "wrk_cpu_pct": ((c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)) / wall * 100
        if wall else 0.0,
        "rss_peak_kb": max(sampler.hwm_max[group.name], hwm_now),
        "rss_max_sampled_kb": max(sampler.rss_max[group.name], rss_now),
        "processes": len(group.pids()),
        "upstream_conns_max": sampler.upstream_max,
        "upstream_conns_seen": len(sampler.upstream_seen),
        # The busiest threads (nginx: processes) of the contender: a serial bottleneck shows
        # as one thread near 100% while the process as a whole is below the machine's cores.
        "threads_top": sorted(((comm, tid, (ticks - th0.get(tid, (comm, 0))[1]) / bl.CLK_TCK
                                / wall * 100) for tid, (comm, ticks) in th1.items()),
                              key=lambda t: -t[2])[:4] if wall else [],
        "threads": len(th1),
    })
    problems = []
    if ok == 0:
        problems.append("no correct answer")
    r["other_cpu_pct"] = max(0.0, busy * 100 * (os.cpu_count() or 1) - r["cpu_pct"]
                             - (r["upstream_cpu_pct"] if name != "upstream" else 0.0)
                             - r["wrk_cpu_pct"])
    if r["wrong"]:
        problems.append("%d wrong answers (first: %s)" % (r["wrong"], r["first_bad"][:200]))
    if args.smoke and r["errors"]:
        problems.append("%d errors (%s; first: %s)" % (r["errors"], sock, r["first_bad"][:200]))
    r["problems"] = problems
    return r


def run_scenario(args, sc, certs, workdir, registry, curl_rows):
    results = []
    conns = sc["conns"]
    up_port = bl.free_port()
    upstream = bl.Nginx(workdir, "upstream-" + sc["name"], up_port)
    upstream.write(bl.upstream_conf(upstream.dir, up_port, certs, sc["delay"], sc["http2"]))
    upstream.start()
    try:
        up_group = bl.Group("upstream", [upstream.proc.pid])
        ok, what = bl.check_call(up_port, tls_ca=certs["ca"])
        if not ok:
            raise RuntimeError("the upstream does not answer the seed call: " + what)
        if args.curl_bin and not sc["delay"] and "tcgw" in args.contenders.split(","):
            log("== %s: libcurl alone" % sc["name"])
            curl_rows.append((sc["name"], floors.run_curl_alone(
                args.curl_bin, up_port, certs["ca"], conns, args.duration)))
        for name in args.contenders.split(","):
            if name == "tcgw-spread":
                # Only while tcgw's per-address limit stays below the load.
                per_address = tcgw_config(args, conns).get("max_connections_per_address")
                if not (args.spread_lib and args.spread_sources > 0
                        and conns > args.spread_threshold
                        and (per_address is None or per_address < conns)):
                    continue
            log("== %s: %s" % (sc["name"], name))
            proc_obj = None
            wrk_env = None
            r = {"scenario": sc["name"], "contender": name, "conns": conns, "problems": []}
            try:
                if name == "upstream":
                    port, url, group = up_port, "https://127.0.0.1:%d/" % up_port, up_group
                    ok, what = True, "checked above"
                else:
                    if name == "nginx":
                        p = bl.free_port()
                        proc_obj = bl.Nginx(workdir, "proxy-" + sc["name"], p)
                        proc_obj.write(bl.proxy_conf(proc_obj.dir, p, up_port, certs["ca"],
                                                     keepalive=max(64, conns)))
                        proc_obj.start()
                        port = p
                    elif name == "sdk":
                        proc_obj = bl.SdkProxy(workdir, up_port, certs["ca"])
                        proc_obj.start()
                        port = proc_obj.port
                    elif name in ("tcgw", "tcgw-spread", "tcgw-audit"):
                        cfg = tcgw_config(args, conns)
                        if name == "tcgw-audit":
                            cfg["audit"] = audit_config(workdir)
                        proc_obj = bl.Tcgw(workdir, up_port, certs["ca"], cfg,
                                           identity=args.identity)
                        proc_obj.start()
                        port = proc_obj.port
                        if proc_obj.headers:
                            wrk_env = dict(wrk_env or {}, BENCH_AUTHORIZATION=proc_obj.headers[
                                "Authorization"])
                        if name == "tcgw-spread":
                            wrk_env = dict(wrk_env or {}, LD_PRELOAD=args.spread_lib,
                                           TCGW_SPREAD_SOURCES=str(args.spread_sources))
                    else:
                        raise RuntimeError("unknown contender " + name)
                    url = "http://127.0.0.1:%d/" % port
                    group = bl.Group(name, [proc_obj.proc.pid])
                    ok, what = bl.check_call(
                        port, headers=getattr(proc_obj, "headers", None))
                if not ok:
                    r["problems"].append("the seed call does not succeed: " + what)
                else:
                    r = measure(args, sc, name, url, group, up_group, up_port, wrk_env,
                                registry)
                if name.startswith("tcgw") and proc_obj is not None:
                    r["tcgw_config"] = proc_obj.config()
                    if name == "tcgw-audit":
                        proc_obj.stop()  # the writer's counters are logged at stop
                        r["audit"] = audit_stats(proc_obj.gw.read_log())
            except Interrupted:
                raise
            except Exception as e:  # noqa: BLE001 - one contender failing must not hide the rest
                r["problems"].append(str(e)[:1500])
            finally:
                if proc_obj is not None:
                    try:
                        proc_obj.stop()
                    except Exception as e:  # noqa: BLE001 - report, go on with the rest
                        r.setdefault("problems", []).append("stop: %s" % str(e)[:1500])
            r["bound"] = sc["bound"]
            results.append(r)
            log("   %s" % one_line(r))
            time.sleep(1.0)
    finally:
        upstream.stop()
    return results


def one_line(r):
    if "rps_ok" not in r:
        return "FAIL: " + "; ".join(r.get("problems", []))
    return ("%.0f ok/s, p50 %.1f ms, p99 %.1f ms, errors %d, wrong %d, RSS %.1f MiB, CPU %.0f%%, "
            "upstream h1/h2 %d/%d over <=%d conns%s"
            % (r["rps_ok"], r["p50_ms"], r["p99_ms"], r["errors"], r["wrong"],
               r["rss_peak_kb"] / 1024, r["cpu_pct"], r["upstream_h1"], r["upstream_h2"],
               r["upstream_conns_max"],
               ("  FAIL: " + "; ".join(r["problems"])) if r["problems"] else ""))


# ---------------------------------------------------------------------------------------------
# microbenchmarks


MICRO_LABELS = {
    "tc3_full": "TC3 signature, key derived each time (gw_tc3_derive_key + gw_tc3_string_to_sign"
                " + gw_tc3_signature)",
    "tc3_cached_key": "TC3 signature with a derived key reused (gw_tc3_string_to_sign + "
                      "gw_tc3_signature)",
    "vault_sign": "gw_vault_sign (the gateway's signing stage: cached day key, Authorization)",
    "vault_sign_resident": "gw_vault_sign, vault_keys_resident",
    "apispec_check": "gw_apispec_check of the seed call (specs/)",
    "json_parse_check": "json_loadb + gw_apispec_check of the seed body",
}


def run_micro(args):
    out = []
    runs = [["--seconds", str(args.micro_seconds)]]
    threads = os.cpu_count() or 1
    if threads > 1:
        runs.append(["--seconds", str(args.micro_seconds), "--threads", str(threads),
                     "--only", "vault_sign,vault_sign_resident,tc3_full"])
    for extra in runs:
        cmd = [args.micro_bin, "--spec-dir", os.path.join(bl.gw.repo_root(), "specs")] + extra
        log("== micro: " + " ".join(cmd))
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (cmd[0], p.returncode, p.stderr[-2000:]))
        for line in p.stdout.splitlines():
            if not line.startswith("micro: "):
                continue
            name, *kv = line[len("micro: "):].split()
            d = dict(x.split("=", 1) for x in kv)
            out.append({"name": name, "threads": int(d["threads"]), "ops": int(d["ops"]),
                        "cpu_s": float(d["cpu_s"]), "wall_s": float(d["wall_s"]),
                        "ops_per_cpu_s": float(d["ops_per_cpu_s"]),
                        "ops_per_wall_s": float(d["ops_per_wall_s"]), "cmd": " ".join(cmd)})
    return out


# ---------------------------------------------------------------------------------------------
# report


def fmt_ms(v):
    if v is None:
        return "-"
    return "%.2f ms" % v if v < 10 else "%.1f ms" % v if v < 1000 else "%.2f s" % (v / 1000)


def fmt_int(v):
    return "{:,}".format(int(round(v)))


def fmt_ratio(a, b):
    if not a or not b:
        return "-"
    return "%.2f×" % (a / b)


def label(name, args):
    return CONTENDER_LABELS.get(name, name).format(n=args.spread_sources)


def errors_cell(r):
    if not r["errors"]:
        return "0"
    parts = ["%s %s" % (fmt_int(v), k) for k, v in r["sock"].items() if v]
    if r["non2xx"]:
        parts.append("%s non-2xx" % fmt_int(r["non2xx"]))
    return "%s (%s)" % (fmt_int(r["errors"]), ", ".join(parts))


def upstream_cell(r):
    h1, h2 = r["upstream_h1"], r["upstream_h2"]
    proto = "/".join(p for p, n in (("h1.1", h1), ("h2", h2)) if n) or "?"
    return "%s, ≤%d conns" % (proto, r["upstream_conns_max"])


def main_table(results, args):
    lines = ["| scenario | contender | req/s (correct) | p50 | p99 | p99.9 | errors | wrong "
             "| peak RSS | CPU s / 10k calls | CPU | upstream link |",
             "|---|---|--:|--:|--:|--:|---|--:|--:|--:|--:|---|"]
    for r in results:
        if "rps_ok" not in r:
            lines.append("| %s | %s | FAIL: %s |||||||||| "
                         % (r["scenario"], label(r["contender"], args),
                            "; ".join(r["problems"])[:300].replace("|", "/")))
            continue
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %.1f MiB | %s | %.0f%% | %s |" % (
            r["scenario"], label(r["contender"], args), fmt_int(r["rps_ok"]),
            fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]), fmt_ms(r["p999_ms"]), errors_cell(r),
            fmt_int(r["wrong"]), r["rss_peak_kb"] / 1024,
            "%.2f" % r["cpu_s_per_10k"] if r["cpu_s_per_10k"] is not None else "-",
            r["cpu_pct"], upstream_cell(r)))
    return "\n".join(lines)


def by(results, scenario, contender):
    for r in results:
        if r["scenario"] == scenario and r["contender"] == contender and "rps_ok" in r:
            return r
    return None


def ratio_table(results, scs, args):
    lines = ["| scenario | tcgw req/s | tcgw / nginx proxy | tcgw / SDK proxy | tcgw / upstream "
             "directly | tcgw / bound | p99 tcgw / nginx | CPU per call tcgw / nginx "
             "| RSS tcgw / nginx | targets |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    verdicts = []
    for sc in scs:
        for tname in ("tcgw", "tcgw-spread"):
            t = by(results, sc["name"], tname)
            if t is None:
                continue
            n = by(results, sc["name"], "nginx")
            s = by(results, sc["name"], "sdk")
            u = by(results, sc["name"], "upstream")
            nr = n["rps_ok"] if n else None
            sr = s["rps_ok"] if s else None
            bound = sc["bound"]
            checks = []
            if bound is None and nr:
                checks.append(("≥0.8× nginx", t["rps_ok"] >= 0.8 * nr))
            if sr:
                checks.append(("≥10× SDK", t["rps_ok"] >= 10 * sr))
            if bound:
                checks.append(("≥90%% of %s/s" % fmt_int(bound), t["rps_ok"] >= 0.9 * bound))
                checks.append(("RSS ≤64 MiB", t["rss_peak_kb"] <= 64 * 1024))
            cell = ", ".join("%s %s" % (c, "met" if m else "**not met**") for c, m in checks)
            verdicts.append((sc["name"], tname, checks))
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                sc["name"] + ("" if tname == "tcgw" else " (" + label(tname, args) + ")"),
                fmt_int(t["rps_ok"]), fmt_ratio(t["rps_ok"], nr), fmt_ratio(t["rps_ok"], sr),
                fmt_ratio(t["rps_ok"], u["rps_ok"] if u else None),
                "%.0f%%" % (100 * t["rps_ok"] / bound) if bound else "-",
                fmt_ratio(t["p99_ms"], n["p99_ms"] if n else None),
                fmt_ratio(t["cpu_s_per_10k"], n["cpu_s_per_10k"] if n else None),
                fmt_ratio(t["rss_peak_kb"], n["rss_peak_kb"] if n else None), cell))
    return "\n".join(lines), verdicts


def audit_table(results, scs):
    """tcgw with the audit log (group commit: one write+fdatasync per batch) against without."""
    lines = ["| scenario | tcgw req/s | tcgw-audit req/s | audit / no audit | p99 no audit | "
             "p99 audit | records | fsyncs | records per fsync | largest batch |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    any_row = False
    for sc in scs:
        off, on = by(results, sc["name"], "tcgw"), by(results, sc["name"], "tcgw-audit")
        if on is None:
            continue
        a = on.get("audit") or {}
        any_row = True
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            sc["name"], fmt_int(off["rps_ok"]) if off else "-", fmt_int(on["rps_ok"]),
            fmt_ratio(on["rps_ok"], off["rps_ok"]) if off else "-",
            fmt_ms(off["p99_ms"]) if off else "-", fmt_ms(on["p99_ms"]),
            fmt_int(a.get("records", 0)), fmt_int(a.get("batches", 0)),
            "%.1f" % a["records_per_fsync"] if "records_per_fsync" in a else "-",
            fmt_int(a.get("max_batch", 0))))
    return lines if any_row else []


def micro_table(micro):
    lines = ["| microbenchmark | threads | per core (ops per CPU-second) | aggregate ops/s (wall) "
             "| µs per op (CPU) |", "|---|--:|--:|--:|--:|"]
    for m in micro:
        lines.append("| %s | %d | %s | %s | %.2f |" % (
            MICRO_LABELS.get(m["name"], m["name"]), m["threads"], fmt_int(m["ops_per_cpu_s"]),
            fmt_int(m["ops_per_wall_s"]), 1e6 / m["ops_per_cpu_s"] if m["ops_per_cpu_s"] else 0))
    return "\n".join(lines)


def context_lines(results, args):
    out = []
    for r in results:
        if "rps_ok" not in r:
            continue
        out.append("- %s / %s: CPU (100%% = one core): contender %.0f%% (%d processes), upstream "
                   "nginx %.0f%%, wrk %.0f%%, everything else on the machine %.0f%%; machine "
                   "%.0f%% busy; busiest of its %d threads: %s; %s answers in %.1f s; upstream "
                   "connections: at most %d at once, %d distinct seen%s" % (
                       r["scenario"], r["contender"], r["cpu_pct"], r["processes"],
                       r["upstream_cpu_pct"], r["wrk_cpu_pct"], r["other_cpu_pct"],
                       r["machine_busy_pct"], r.get("threads", 0),
                       ", ".join("%s/%d %.0f%%" % t for t in r.get("threads_top", [])) or "-",
                       fmt_int(r["requests"]),
                       r["duration_s"], r["upstream_conns_max"], r["upstream_conns_seen"],
                       ("; first bad answer: `%s`" % r["first_bad"][:160].replace("`", "'"))
                       if r["first_bad"] else ""))
    return "\n".join(out)


def write_chart(results, scs, args, path, title):
    names = [c for c in args.contenders.split(",") if any(r["contender"] == c for r in results)]
    if not names or not bl.have("gnuplot"):
        return "gnuplot not found" if names else "no results"
    dat = path + ".dat"
    with open(dat, "w") as f:
        f.write("scenario " + " ".join('"%s"' % label(n, args) for n in names) + "\n")
        for sc in scs:
            row = ['"%s"' % sc["name"]]
            for n in names:
                r = by(results, sc["name"], n)
                row.append("%.1f" % r["rps_ok"] if r else "-")
            f.write(" ".join(row) + "\n")
        f.write("\n\n")
        f.write("scenario " + " ".join('"%s"' % label(n, args) for n in names) + "\n")
        for sc in scs:
            row = ['"%s"' % sc["name"]]
            for n in names:
                r = by(results, sc["name"], n)
                row.append("%.3f" % max(r["p99_ms"], 0.001) if r else "-")
            f.write(" ".join(row) + "\n")
    cols = len(names)
    plot1 = ", ".join("'%s' index 0 using %d:xtic(1) title columnheader(%d)" % (dat, i + 2, i + 2)
                      for i in range(cols))
    plot2 = ", ".join("'%s' index 1 using %d:xtic(1) title columnheader(%d)" % (dat, i + 2, i + 2)
                      for i in range(cols))
    script = """
set terminal pngcairo size 1400,1000 noenhanced
set output '{out}'
set datafile missing '-'
set multiplot layout 2,1 title '{title}'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key outside right top
set rmargin at screen 0.72
set logscale y
set ylabel 'correct answers per second (log scale)'
plot {p1}
unset key
set ylabel 'p99 latency (ms, log scale)'
plot {p2}
unset multiplot
""".format(out=path, title=title.replace("'", ""), p1=plot1, p2=plot2)
    p = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True, timeout=60)
    os.unlink(dat)
    if p.returncode != 0:
        return "gnuplot failed: " + p.stderr[-800:]
    return None


def git_describe():
    src = bl.gw.repo_root()
    try:
        with open(os.path.join(src, ".tcgw-bench-rev")) as f:
            return "%s (exported with git archive)" % f.read().strip()[:12]
    except OSError:
        pass
    try:
        rev = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", src, "status", "--porcelain", "--",
                                "gateway", "CMakeLists.txt"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return rev + (" with uncommitted changes in gateway/" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def report(args, scs, results, micro, profile, memory, curl_rows, started, elapsed, command):
    now = datetime.datetime.now(datetime.timezone.utc)
    machine = "%d cores (nproc), %s, %s, Linux %s" % (os.cpu_count(), bl.cpu_model(),
                                                       "%.0f GiB RAM" % mem_gib(),
                                                       platform.release())
    versions = ("wrk %s, nginx %s, node %s with tencentcloud-sdk-nodejs-common %s, tcgw %s"
                % (bl.tool_version(["wrk", "-v"]), bl.tool_version(["nginx", "-v"]),
                   bl.tool_version(["node", "--version"]), bl.sdk_version(), git_describe()))
    md = ["# tcgw benchmark", "",
          "- date: %s (UTC), took %.0f s" % (now.strftime("%Y-%m-%d %H:%M"), elapsed),
          "- machine: %s" % machine,
          "- command: `%s`" % command,
          "- software: %s" % versions,
          "- everything on loopback and on the same %d cores: wrk (%d threads), the upstream "
          "nginx and the contender share them, so figures are lower bounds and contenders "
          "compete with the load generator; other load on the machine during the run is not "
          "controlled (see the machine-busy figures below)." % (os.cpu_count(),
                                                               args.wrk_threads),
          "- each contender is started fresh for each scenario, checked with one seed call, "
          "warmed up for %s s with the same connections, then measured for %s s: "
          "`wrk -t%d -c<N> -d%ss --timeout %ds -s bench/check.lua`."
          % (args.warmup, args.duration, args.wrk_threads, args.duration, args.timeout),
          "- req/s counts correct answers only (2xx with \"RequestId\" and no \"Error\", every "
          "body checked); errors = socket errors (connect/read/write/timeout) + non-2xx; "
          "peak RSS = sum of VmHWM over the contender's processes (nginx: master + workers); "
          "CPU = utime+stime of those processes during the measure; upstream link = protocol "
          "of the upstream's answers (named in their RequestId) and the most connections to "
          "the upstream seen open at once (sampled every 0.1 s).",
          "- tcgw configuration for N connections: `%s` (here with N=%d), plus "
          "`upstream.connect_to` and `upstream.ca_file` for the upstream, master key and "
          "credential made with `tcgw keygen` / `tcgw secrets put`; `max_connections` is "
          "max(4096, (N+256) × threads) (libmicrohttpd divides it among its threads) and "
          "`upstream.max_host_connections` max(256, N), so that no limit of tcgw's "
          "configuration is below the load; %s wrk's connections all come from 127.0.0.1, as "
          "a co-located service's would, except in `tcgw-spread` rows."
          % (json.dumps(tcgw_config(args, scs[-1]["conns"] if scs else 0)),
             scs[-1]["conns"] if scs else 0, per_address_note()),
          "- nginx proxy: `keepalive` = max(64, connections) idle upstream connections per "
          "worker, `proxy_ssl_verify on`, worker_processes auto. SDK proxy: one Node process, "
          "https.Agent keepAlive.",
          "", "## Results", "", main_table(results, args), ""]
    ratios, verdicts = ratio_table(results, scs, args)
    md += ["## tcgw against the others", "", ratios, ""]
    audit = audit_table(results, scs)
    if audit:
        md += ["## The audit log: tcgw with and without it", "",
               "`tcgw-audit` is tcgw with an `audit` section (a fresh log on the benchmark "
               "machine's disk, sealed every second): every answer waits for its record's "
               "write and fdatasync, and the writer commits the records of concurrent calls in "
               "groups (counters from its `event=audit_stats` line at stop; they include the "
               "warm-up).", ""] + audit + [""]
    if curl_rows:
        md += ["## CPU per call: how much of it libcurl takes", ""] + floors.cpu_markdown(
            curl_rows, results) + [""]
    if memory:
        md += ["## Memory: tcgw idle, and what its libraries hold", ""] + floors.markdown(
            memory, args.slow_conns) + [""]
    if micro:
        md += ["## Microbenchmarks (bench/micro/micro.c, linked against tcgw_core)", "",
               micro_table(micro), "",
               "`%s`" % micro[0]["cmd"], ""]
    if profile:
        md += ["## Instructions per call by stage (callgrind)", "", profile["markdown"], ""]
    md += ["## Run details", "", context_lines(results, args), ""]
    return "\n".join(md), verdicts


def per_address_note():
    """What the report says about tcgw's per-client-address connection limit."""
    if bl.tcgw_supports("max_connections_per_address"):
        return "`max_connections_per_address` is set to `max_connections`;"
    try:
        with open(os.path.join(bl.gw.repo_root(), "gateway", "cli", "cli_serve.c")) as f:
            m = re.search(r"#define\s+SERVE_MAX_CONNECTIONS_PER_ADDRESS\s+(\d+)", f.read())
    except OSError:
        m = None
    if m:
        return ("tcgw limits connections per client address to %s "
                "(SERVE_MAX_CONNECTIONS_PER_ADDRESS in gateway/cli/cli_serve.c, not "
                "configurable) and closes any connection past it;" % m.group(1))
    return "tcgw may limit connections per client address (not configurable in this build);"


def mem_gib():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true",
                    help="about 2 s per contender and scenario with small connection counts")
    ap.add_argument("--duration", type=float, help="seconds measured per run (15; smoke 2)")
    ap.add_argument("--warmup", type=float, help="seconds of warm-up per run (3; smoke 1)")
    ap.add_argument("--fast-conns", help="connection counts against the fast upstream (32,256)")
    ap.add_argument("--slow-conns", type=int, help="connections against the slow upstream (2000)")
    ap.add_argument("--slow-delay", type=float, default=0.2, help="slow upstream delay, s (0.2)")
    ap.add_argument("--scenarios", default="fast,slow-h1,slow-h2")
    ap.add_argument("--contenders", default="upstream,nginx,sdk,tcgw,tcgw-audit,tcgw-spread")
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=10, help="wrk per-request timeout, s (10)")
    ap.add_argument("--gw-threads", type=int, default=2, help="tcgw server threads (2)")
    ap.add_argument("--identity", choices=("listener", "token"), default="listener",
                    help="how tcgw's callers identify: as a sidecar's unauthenticated caller "
                         "allowed everything (listener), or with a bearer token under "
                         "policies/capacity-bot.json (token)")
    ap.add_argument("--resident-keys", action="store_true",
                    help="run tcgw with vault_keys_resident (where tcgw still has that key)")
    ap.add_argument("--tcgw-config", help="JSON merged into tcgw's configuration")
    ap.add_argument("--keep-per-address-limit", action="store_true",
                    help="leave tcgw's max_connections_per_address at its default")
    ap.add_argument("--spread-lib", help="libtcgw-bench-spread.so (the tcgw-spread contender)")
    ap.add_argument("--spread-sources", type=int, default=8)
    ap.add_argument("--spread-threshold", type=int, default=256,
                    help="run tcgw-spread only above this many connections (256)")
    ap.add_argument("--micro-bin", help="tcgw-bench-micro to run (none: no microbenchmarks)")
    ap.add_argument("--curl-bin", help="tcgw-bench-curl to run in fast scenarios (none: not)")
    ap.add_argument("--floor-bin", help="tcgw-bench-floor to run (none: the idle row only)")
    ap.add_argument("--micro-seconds", type=float, help="seconds per microbenchmark (2; smoke 0.2)")
    ap.add_argument("--callgrind-calls", type=int,
                    help="calls profiled with callgrind (500; smoke 20; 0: none)")
    ap.add_argument("--results-dir", default=os.path.join(bl.HERE, "results"))
    ap.add_argument("--workdir")
    ap.add_argument("--pidfile")
    ap.add_argument("--command", default="bash bench/run.sh " + " ".join(sys.argv[1:]),
                    help="the command line to print in the report")
    args = ap.parse_args()
    smoke = args.smoke
    defaults = {"duration": (15, 2), "warmup": (3, 1), "fast_conns": ("32,256", "4,16"),
                "slow_conns": (2000, 64), "micro_seconds": (2.0, 0.2),
                "callgrind_calls": (500, 20)}
    for k, (full, small) in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, small if smoke else full)
    if smoke and args.spread_threshold >= args.slow_conns:
        args.spread_threshold = args.slow_conns // 2  # so that smoke runs tcgw-spread too
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bl.set_pidfile(args.pidfile)
    workdir = args.workdir or tempfile.mkdtemp(prefix="tcgw-bench-")
    started = time.monotonic()
    registry = []
    results, micro, profile, memory, curl_rows = [], [], None, None, []
    status = 0
    try:
        certs = bl.harness.make_certs(os.path.join(workdir, "certs"))
        if args.micro_bin:
            micro = run_micro(args)
        if args.callgrind_calls and args.callgrind_calls > 0:
            if bl.have("valgrind"):
                import callgrind
                log("== callgrind: %d calls" % args.callgrind_calls)
                try:
                    profile = callgrind.profile(os.path.join(workdir, "callgrind"), certs,
                                                args.callgrind_calls, tcgw_config(args, 32))
                except Interrupted:
                    raise
                except Exception as e:  # noqa: BLE001 - the load runs still go ahead
                    profile = {"problems": ["the profile failed: %s" % str(e)[-1500:]],
                               "markdown": "(no profile: %s)" % str(e)[-1500:]}
            else:
                log("== callgrind: valgrind is not installed; skipped")
        if "tcgw" in args.contenders.split(","):
            log("== memory: tcgw idle, the libraries' floor")
            memory = floors.measure(args, certs, workdir, tcgw_config(args, 32))
        scs = scenarios(args)
        for sc in scs:
            results += run_scenario(args, sc, certs, workdir, registry, curl_rows)
        elapsed = time.monotonic() - started
        title = "tcgw benchmark %s - %d cores %s" % (
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            os.cpu_count(), bl.cpu_model())
        md, verdicts = report(args, scs, results, micro, profile, memory, curl_rows, started,
                              elapsed, args.command)
        os.makedirs(args.results_dir, exist_ok=True)
        png = os.path.join(args.results_dir, "latest.png")
        err = write_chart(results, scs, args, png, title)
        if err:
            md += "\n(chart not written: %s)\n" % err
            status = 1
        with open(os.path.join(args.results_dir, "latest.md"), "w") as f:
            f.write(md + "\n")
        with open(os.path.join(args.results_dir, "latest.json"), "w") as f:
            json.dump({"args": vars(args), "results": results, "micro": micro, "memory": memory,
                       "libcurl_alone": dict(curl_rows),
                       "profile": profile and {k: v for k, v in profile.items()
                                               if k != "markdown"}}, f, indent=1, default=str)
        print(md)
        print("\nwritten: %s, latest.json, latest.png" % os.path.join(args.results_dir,
                                                                      "latest.md"))
        bad = [r for r in results if r.get("problems")]
        for r in bad:
            print("FAIL: %s / %s: %s" % (r["scenario"], r["contender"], "; ".join(r["problems"])))
        if bad or not results:
            status = 1
        for name, c in curl_rows:
            if c.get("problems"):
                print("FAIL: libcurl alone, %s: %s" % (name, "; ".join(c["problems"])))
                status = 1
        if memory and memory.get("problems"):
            print("FAIL: memory: " + "; ".join(memory["problems"]))
            status = 1
        if profile and profile.get("problems"):
            print("FAIL: callgrind: " + "; ".join(profile["problems"]))
            status = 1
    except Interrupted as e:
        print("interrupted (%s)" % e, file=sys.stderr)
        status = 130
    finally:
        for p in registry:
            if p.poll() is None:
                p.kill()
                p.wait()
    print("bench.py finished in %.0f s with status %d" % (time.monotonic() - started, status))
    return status


if __name__ == "__main__":
    sys.exit(main())
