#!/usr/bin/env python3
"""tcgw load benchmark: tcgw-sim + gateway on loopback, driven by wrk (see bench/run.sh).

Scenarios, each `wrk -t2 -c<N> -d<D>s` with bench/post.lua:
  upstream      the seed ModifyProxyConfiguration call: validated, signed, forwarded over TLS to
                the simulator (which verifies the signature) and answered. Must succeed.
  gateway-only  the same call with an unknown parameter: refused by validation (UnknownParameter)
                before signing, so the gateway's own ceiling without upstream. Must be refused.

For each it prints requests/s, latency percentiles, the answers classified (ok / Tencent error /
other HTTP status / socket errors), the resident memory of the gateway and simulator (VmRSS and
VmHWM from /proc/<pid>/status: idle after start, and the maximum sampled under load) and the CPU
each process used (from /proc/<pid>/stat and /proc/<pid>/task/*/stat), so a saturated simulator
or a saturated gateway thread shows. A scenario whose answers are not what it expects is marked
FAIL and the exit status is 1.

Python standard library only; uses tests/e2e/harness.py (Simulator, make_certs) and
tests/e2e/gw.py (Gateway). Environment: TCGW_BIN, TCGW_SIM_BIN (set by run.sh).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import gw  # noqa: E402
import harness  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
SEED_BODY = gw.SEED_BODY.decode()
REFUSED_BODY = ('{"ProxyId": "link-4ftf12sb", "Concurrent": "2", "Bandwidth": "10", '
                '"NoSuchParameter": "1"}')
SAMPLE_INTERVAL = 0.1


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    raise Interrupted("signal %d" % signum)


# ---------------------------------------------------------------------------------------------
# /proc readers


def proc_status(pid):
    """{'VmRSS': kB, 'VmHWM': kB, 'Threads': n} or None when the process is gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return out


def _stat_ticks(path):
    with open(path) as f:
        data = f.read()
    # comm may hold spaces and parentheses: split after the last ')'.
    comm = data[data.index("(") + 1:data.rindex(")")]
    fields = data[data.rindex(")") + 2:].split()
    return comm, int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


def proc_ticks(pid):
    """(process ticks, {tid: (comm, ticks)}) or None when the process is gone."""
    try:
        _, total = _stat_ticks("/proc/%d/stat" % pid)
        threads = {}
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                threads[int(tid)] = _stat_ticks("/proc/%d/task/%s/stat" % (pid, tid))
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total, threads
    except (FileNotFoundError, ProcessLookupError):
        return None


def system_ticks():
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    total = sum(parts[:8])      # guest time is already in user
    return total - idle, total


def established_to(port):
    """Local endpoints of the ESTABLISHED IPv4 connections whose peer is 127.0.0.1:port."""
    peer = "0100007F:%04X" % port
    out = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[2] == peer and fields[3] == "01":
                out.add(fields[1])
    return out


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


class Sampler(threading.Thread):
    """Samples VmRSS/VmHWM of named pids until stopped; keeps the maxima. With upstream_port,
    also collects every connection to it seen established (a lower bound of those opened)."""

    def __init__(self, pids, upstream_port=None):
        super().__init__(daemon=True)
        self.pids = pids
        self.upstream_port = upstream_port
        self.upstream_conns = set()
        self.max = {name: {"VmRSS": 0, "VmHWM": 0, "Threads": 0} for name in pids}
        self.gone = set()
        self._stop_event = threading.Event()

    def sample(self):
        if self.upstream_port is not None:
            self.upstream_conns |= established_to(self.upstream_port)
        for name, pid in self.pids.items():
            st = proc_status(pid)
            if st is None:
                self.gone.add(name)
                continue
            for key, value in st.items():
                self.max[name][key] = max(self.max[name][key], value)

    def run(self):
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(SAMPLE_INTERVAL)
        self.sample()

    def stop(self):
        self._stop_event.set()
        self.join()


def cpu_report(before, after, seconds):
    """Process CPU% (100 = one core) and its busiest threads, from two proc_ticks() readings."""
    if before is None or after is None:
        return None
    pct = (after[0] - before[0]) / CLK_TCK / seconds * 100.0
    threads = []
    for tid, (comm, ticks) in after[1].items():
        start = before[1].get(tid, (comm, 0))[1]
        threads.append((comm, tid, (ticks - start) / CLK_TCK / seconds * 100.0))
    threads.sort(key=lambda t: -t[2])
    return {"pct": pct, "threads": threads}


# ---------------------------------------------------------------------------------------------
# wrk


def parse_wrk(text):
    out = {}
    for line in text.splitlines():
        if not line.startswith("bench: "):
            continue
        key, _, value = line[len("bench: "):].partition(" ")
        out[key] = value
    return out


def run_scenario(args, name, body, conns, port, pids, sim, registry):
    """Runs wrk once; returns a result dict (figures, memory maxima, CPU, verdict)."""
    env = dict(os.environ, BENCH_BODY=body)
    cmd = ["wrk", "-t%d" % args.wrk_threads, "-c%d" % conns, "-d%ds" % args.duration,
           "--timeout", "%ds" % args.timeout, "-s", os.path.join(HERE, "post.lua"),
           "http://127.0.0.1:%d/" % port]
    if sim is not None:
        sim.clear_records()
    sampler = Sampler(pids, sim.port if sim is not None else None)
    ticks0 = {n: proc_ticks(p) for n, p in pids.items()}
    sys0 = system_ticks()
    t0 = time.monotonic()
    sampler.start()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    registry.append(proc)
    wrk_ticks0 = proc_ticks(proc.pid)
    # Read wrk's CPU just before it exits: sample it while it runs.
    wrk_last = [wrk_ticks0]

    def watch_wrk():
        while proc.poll() is None:
            t = proc_ticks(proc.pid)
            if t is not None:
                wrk_last[0] = t
            time.sleep(SAMPLE_INTERVAL)

    watcher = threading.Thread(target=watch_wrk, daemon=True)
    watcher.start()
    try:
        output, _ = proc.communicate(timeout=args.duration + args.timeout + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        output += "\n(wrk did not finish in time and was killed)"
    watcher.join()
    seconds = time.monotonic() - t0
    ticks1 = {n: proc_ticks(p) for n, p in pids.items()}
    sys1 = system_ticks()
    sampler.stop()

    figures = parse_wrk(output)
    result = {
        "name": name, "conns": conns, "cmd": " ".join(cmd), "figures": figures,
        "wrk_output": output, "mem": sampler.max, "gone": sorted(sampler.gone),
        "cpu": {n: cpu_report(ticks0[n], ticks1[n], seconds) for n in pids},
        "wrk_cpu": cpu_report(wrk_ticks0, wrk_last[0], seconds),
        "system_busy_pct": (sys1[0] - sys0[0]) / max(1, sys1[1] - sys0[1]) * 100.0,
        "upstream_records": None,
        "upstream_conns": len(sampler.upstream_conns) if sim is not None else None,
    }
    if sim is not None:
        try:
            with open(sim.records_path, "rb") as f:
                result["upstream_records"] = sum(1 for _ in f)
        except OSError:
            pass
    result["problems"] = verdict(name, result)
    return result


def verdict(name, r):
    f = r["figures"]
    problems = []
    if "requests" not in f:
        return ["wrk printed no figures (see its output above)"]
    ok, err, other = int(f["ok"]), int(f["error"]), int(f["http_other"])
    sock = dict(kv.split("=") for kv in f["socket_errors"].split())
    if r["gone"]:
        problems.append("process exited during the run: " + ", ".join(r["gone"]))
    if name == "upstream":
        if ok == 0:
            problems.append("no successful answer")
        if err or other:
            problems.append("%d error answers, %d other HTTP statuses (%s; first: %s)"
                            % (err, other, f.get("error_codes", ""), f.get("first_error", "")))
    else:
        if ok:
            problems.append("%d answers were successes; every call should be refused" % ok)
        codes = f.get("error_codes", "")
        if other or any(not c.startswith("UnknownParameter=") for c in codes.split(",") if c):
            problems.append("unexpected answers: codes %s, other HTTP %d" % (codes, other))
    if any(int(v) for v in sock.values()):
        problems.append("socket errors: " + f["socket_errors"])
    return problems


# ---------------------------------------------------------------------------------------------
# report


def kb(v):
    return "%.1f MiB" % (v / 1024.0)


def fmt_us(v):
    v = int(v)
    return "%.2f ms" % (v / 1000.0) if v >= 1000 else "%d us" % v


def other_cpu(r):
    """CPU (100 = one core) the machine spent outside the benchmark's three processes."""
    ours = sum(c["pct"] for c in list(r["cpu"].values()) + [r["wrk_cpu"]] if c)
    return max(0.0, r["system_busy_pct"] * os.cpu_count() - ours)


def print_scenario(r):
    f = r["figures"]
    print("\n--- %s, %d connections ---" % (r["name"], r["conns"]))
    print("$ " + r["cmd"])
    if "requests" not in f:
        print(r["wrk_output"])
    else:
        print("requests %s in %s s = %s req/s" % (f["requests"], f["duration_s"], f["rps"]))
        print("answers: ok %s, Tencent error %s (%s), other HTTP status %s; socket errors: %s"
              % (f["ok"], f["error"], f.get("error_codes") or "-", f["http_other"],
                 f["socket_errors"]))
        print("latency: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s"
              % (fmt_us(f["latency_p50_us"]), fmt_us(f["latency_p90_us"]),
                 fmt_us(f["latency_p99_us"]), fmt_us(f["latency_p99.9_us"]),
                 fmt_us(f["latency_max_us"]), fmt_us(float(f["latency_mean_us"]))))
        if f.get("first_error"):
            print("first error answer: " + f["first_error"][:300])
    if r["upstream_records"] is not None:
        print("requests the simulator recorded: %d (more than wrk counted by about the calls"
              " still in flight when wrk stopped)" % r["upstream_records"])
    if r["upstream_conns"] is not None:
        print("distinct gateway->simulator TLS connections seen (sampled every %.1f s, so at"
              " least this many were opened): %d" % (SAMPLE_INTERVAL, r["upstream_conns"]))
    for name, mem in r["mem"].items():
        print("%-9s max under load: VmRSS %s, VmHWM %s, threads %d"
              % (name, kb(mem["VmRSS"]), kb(mem["VmHWM"]), mem["Threads"]))
    cpus = dict(r["cpu"])
    cpus["wrk"] = r["wrk_cpu"]
    for name, c in cpus.items():
        if c is None:
            continue
        top = ", ".join("%s/%d %.0f%%" % (comm, tid, pct) for comm, tid, pct in c["threads"][:4]
                        if pct >= 1.0)
        print("%-9s CPU %5.1f%% (100%% = one core)  busiest threads: %s"
              % (name, c["pct"], top or "-"))
    print("machine CPU busy: %.0f%% of %d cores; outside gateway+simulator+wrk: %.0f%% of a core"
          " (other processes on this shared machine, kernel)" % (r["system_busy_pct"],
                                                                os.cpu_count(), other_cpu(r)))
    for p in r["problems"]:
        print("FAIL: " + p)


def print_summary(results, idle, after):
    print("\n=================================== SUMMARY ===================================")
    print("loopback; %d CPU cores (%s) SHARED by wrk, gateway and simulator, so every figure"
          % (os.cpu_count(), cpu_model()))
    print("below is lower than what the gateway alone would do on a machine of its own.")
    hdr = ("scenario", "conns", "req/s", "ok", "errors", "p50", "p99", "max",
           "gw RSS max", "gw HWM", "gw CPU", "sim CPU", "wrk CPU", "other CPU", "gw->sim conns", "result")
    rows = []
    for r in results:
        f = r["figures"]
        if "requests" not in f:
            rows.append((r["name"], str(r["conns"])) + ("?",) * 13 + ("FAIL",))
            continue
        errors = int(f["error"]) + int(f["http_other"]) + sum(
            int(v.split("=")[1]) for v in f["socket_errors"].split())
        cpu = lambda c: "%.0f%%" % c["pct"] if c else "?"  # noqa: E731
        rows.append((r["name"], str(r["conns"]), "%.0f" % float(f["rps"]), f["ok"], str(errors),
                     fmt_us(f["latency_p50_us"]), fmt_us(f["latency_p99_us"]),
                     fmt_us(f["latency_max_us"]),
                     kb(r["mem"]["gateway"]["VmRSS"]), kb(r["mem"]["gateway"]["VmHWM"]),
                     cpu(r["cpu"].get("gateway")), cpu(r["cpu"].get("simulator")),
                     cpu(r["wrk_cpu"]), "%.0f%%" % other_cpu(r),
                     "-" if r["upstream_conns"] is None else ">=%d" % r["upstream_conns"],
                     "FAIL" if r["problems"] else "pass"))
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(hdr)]
    line = "  ".join("%-*s" % (w, h) for w, h in zip(widths, hdr))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join("%-*s" % (w, c) for w, c in zip(widths, row)))
    print("(CPU: 100% = one core, 200% = the whole machine; 'other CPU' is what the machine"
          " spent outside\n these three processes during the run: other users' jobs, kernel.)")
    print("('gw->sim conns': distinct gateway->simulator TLS connections seen established during"
          " the run;\n far more than max_host_connections means connections are not reused and"
          " each call may pay a TLS handshake.)")
    print("('errors' counts Tencent-format error answers + other HTTP statuses + socket errors;"
          " for gateway-only\n every answer is an expected UnknownParameter refusal, so 'ok' must"
          " be 0 and 'errors' = requests.)")
    print("\nresident memory (VmRSS now / VmHWM peak):")
    for name in ("gateway", "simulator"):
        print("  %-9s idle after start: %s / %s;  max sampled under load: VmRSS %s;"
              "  after all runs: %s / %s"
              % (name, kb(idle[name]["VmRSS"]), kb(idle[name]["VmHWM"]),
                 kb(max(r["mem"][name]["VmRSS"] for r in results)),
                 kb(after[name]["VmRSS"]) if after.get(name) else "?",
                 kb(after[name]["VmHWM"]) if after.get(name) else "?"))
    up = [r for r in results if r["name"] == "upstream" and r["cpu"].get("simulator")]
    for r in up:
        sim = r["cpu"]["simulator"]["pct"]
        gwc = r["cpu"]["gateway"]["pct"] if r["cpu"].get("gateway") else 0.0
        wrkc = r["wrk_cpu"]["pct"] if r["wrk_cpu"] else 0.0
        busiest = max((r["cpu"]["gateway"]["threads"] or [("-", 0, 0.0)]), key=lambda t: t[2])
        print("\nupstream @%d: CPU simulator %.0f%%, gateway %.0f%% (busiest thread %s %.0f%%),"
              " wrk %.0f%%, other %.0f%%; machine %.0f%% busy."
              % (r["conns"], sim, gwc, busiest[0], busiest[2], wrkc, other_cpu(r),
                 r["system_busy_pct"]))
        if r["system_busy_pct"] > 90:
            share = sorted((("simulator", sim), ("gateway", gwc), ("wrk", wrkc),
                            ("other load", other_cpu(r))),
                           key=lambda t: -t[1])
            print("  the 2 cores are saturated; largest CPU consumer: %s (%.0f%%)."
                  % share[0])
            if share[0][0] == "simulator":
                print("  => the simulator (TLS + signature verification) is the bottleneck of"
                      " this scenario, not the gateway.")
        elif busiest[2] > 90:
            print("  => one gateway thread (%s) is near a full core: a serial bottleneck."
                  % busiest[0])
        n = r["upstream_conns"] or 0
        if n > 2 * 64:
            print("  upstream connection churn: at least %d gateway->simulator TLS connections for"
                  " %s calls (about %.0f calls per connection; upstream.max_host_connections is"
                  " 64), so many calls pay a fresh TLS handshake on both sides."
                  % (n, r["figures"].get("requests", "?"),
                     int(r["figures"].get("requests", 0)) / n))


# ---------------------------------------------------------------------------------------------


def note_pid(pidfile, pid):
    if pidfile:
        with open(pidfile, "a") as f:
            f.write("%d\n" % pid)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    ap.add_argument("--conns", default="32,256", help="connection counts (32,256)")
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=5, help="wrk per-request timeout, s")
    ap.add_argument("--gw-threads", type=int, default=2)
    ap.add_argument("--max-connections", type=int, default=4096)
    ap.add_argument("--scenarios", default="upstream,gateway-only")
    ap.add_argument("--resident-keys", action="store_true",
                    help="run the gateway with vault_keys_resident (no mprotect per signature)")
    ap.add_argument("--workdir", help="scratch directory (default: a new temporary one)")
    ap.add_argument("--pidfile", help="append the pid of every process started, for run.sh")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    workdir = args.workdir or tempfile.mkdtemp(prefix="tcgw-bench-")
    registry = []  # wrk processes
    sim = gateway = None
    results = []
    status = 1
    try:
        print("tcgw benchmark: gateway %s\n                simulator %s"
              % (gw.tcgw_bin(), os.environ.get("TCGW_SIM_BIN")))
        print("NOTE: %d CPU cores, shared by wrk, the gateway and the simulator (all on loopback)."
              % os.cpu_count())
        certs = harness.make_certs(os.path.join(workdir, "certs"))
        sim = harness.Simulator().start(os.path.join(workdir, "sim"),
                                        {gw.DEV_SECRET_ID: gw.DEV_SECRET_KEY},
                                        rate_limit=0, certs=certs)
        note_pid(args.pidfile, sim.proc.pid)
        gateway = gw.Gateway(workdir, sim.port, sim.ca_file,
                             extra_config={"threads": args.gw_threads,
                                           "max_connections": args.max_connections,
                                           "vault_keys_resident": args.resident_keys})
        gateway.start()
        note_pid(args.pidfile, gateway.proc.pid)
        pids = {"gateway": gateway.proc.pid, "simulator": sim.proc.pid}
        print("simulator pid %d port %d (--rate-limit 0); gateway pid %d port %d "
              "(threads %d, max_connections %d, vault_keys_resident %s)"
              % (sim.proc.pid, sim.port, gateway.proc.pid, gateway.port, args.gw_threads,
                 args.max_connections, str(args.resident_keys).lower()))

        time.sleep(0.5)
        idle = {n: proc_status(p) for n, p in pids.items()}
        for n in pids:
            print("%-9s idle after start: VmRSS %s, VmHWM %s, threads %d"
                  % (n, kb(idle[n]["VmRSS"]), kb(idle[n]["VmHWM"]), idle[n]["Threads"]))

        # Sanity: the seed call succeeds through the simulator; the refused one is refused.
        st, answer = gateway.call("ModifyProxyConfiguration", SEED_BODY.encode())
        print("check seed call: HTTP %d %s" % (st, json.dumps(answer)))
        if st != 200 or "Error" in answer.get("Response", {}):
            raise SystemExit("the seed call does not succeed; not benchmarking refusals")
        st, answer = gateway.call("ModifyProxyConfiguration", REFUSED_BODY.encode())
        print("check refused call: HTTP %d %s" % (st, json.dumps(answer)[:160]))
        if gw.error_code(answer) != "UnknownParameter":
            raise SystemExit("the gateway-only call is not refused with UnknownParameter")

        bodies = {"upstream": SEED_BODY, "gateway-only": REFUSED_BODY}
        for name in args.scenarios.split(","):
            for conns in (int(c) for c in args.conns.split(",")):
                r = run_scenario(args, name, bodies[name], conns, gateway.port, pids,
                                 sim if name == "upstream" else None, registry)
                print_scenario(r)
                results.append(r)
                if gateway.proc.poll() is not None:
                    print("FAIL: the gateway exited with %d; its log:\n%s"
                          % (gateway.proc.returncode, gateway.read_log()[-4000:]))
                    raise SystemExit(1)
        time.sleep(0.5)
        after = {n: proc_status(p) for n, p in pids.items()}
        print_summary(results, idle, after)
        status = 1 if any(r["problems"] for r in results) else 0
    except Interrupted as e:
        print("interrupted (%s): stopping" % e)
        status = 130
    finally:
        for proc in registry:  # a wrk run still going (interrupted)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for what, stop in (("gateway", gateway.stop if gateway else None),
                           ("simulator", sim.stop if sim else None)):
            if stop is None:
                continue
            try:
                stop()
                print("%s stopped cleanly (exit 0)" % what)
            except Exception as e:  # noqa: BLE001 - report and keep stopping the rest
                print("%s: %s" % (what, str(e)[:2000]))
                status = status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
