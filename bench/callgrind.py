#!/usr/bin/env python3
"""Instructions per call by stage: tcgw under `valgrind --tool=callgrind`, driven through its
whole pipeline (HTTP in, validate, sign, forward over TLS with libcurl, answer) by N sequential
seed calls over one keep-alive connection, against nginx over TLS as the upstream.

    python3 bench/callgrind.py [--calls N] [--keep DIR]      (run.sh sets TCGW_BIN)

After --warmup calls, the counters are zeroed (callgrind_control -z), N calls are made, and the
counters are dumped (callgrind_control -d). The dump is read directly (the callgrind format):
inclusive instructions of the functions that mark each stage, divided by N, and the
instructions spent in each shared object (self cost), divided by N. User-space instructions
only: the kernel's share of system calls (socket I/O, mprotect) is not counted.
"""
import argparse
import collections
import glob
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import benchlib as bl

# (label, function names or prefixes ending in '*'). Inclusive costs; none of these is called
# from another one of the list (checked: the rest must stay positive). Where a stage names one
# function under its names of several revisions (one may call the other), the largest counts.
ONE_OF = ("validate", "sign")
STAGES = [
    ("head: admission and request head (gw_pipeline_begin)", ["gw_pipeline_begin"]),
    ("body: JSON parse (gw_request_parse_body)", ["gw_request_parse_body"]),
    ("validate (gw_apispec_check)", ["gw_apispec_check", "gw_apispec_check_sent"]),
    ("sign (gw_vault_sign)", ["gw_vault_sign", "gw_vault_sign_token"]),
    ("hand-off to libcurl (gw_upstream_submit)", ["gw_upstream_submit"]),
    ("upstream transfer: libcurl + TLS (curl_multi_*)",
     ["curl_multi_perform", "curl_multi_poll", "curl_multi_wait", "curl_multi_add_handle",
      "curl_multi_remove_handle", "curl_multi_info_read", "curl_multi_socket_action"]),
    ("upstream transfer set-up and clean-up (curl_easy_*, curl_slist_*)",
     ["curl_easy_*", "curl_slist_*"]),
    ("record: the per-call log line (gw_record_log_line)", ["gw_record_log_line"]),
]
REST = "the rest: libmicrohttpd (accept, read, HTTP parsing, write), thread hand-offs, " \
       "allocation, call set-up"


def parse_callgrind(path):
    """(total Ir, {function: self}, {function: inclusive}, {object: self},
    {function: {caller: inclusive cost of its calls}}, {function: object})."""
    names = {"ob": {}, "fn": {}, "fl": {}}
    self_fn = collections.Counter()
    incl_calls = collections.Counter()
    callers = collections.defaultdict(collections.Counter)
    self_ob = collections.Counter()
    fn_ob = {}
    total = 0
    ob = fn = cfn = None
    pending_call = False

    def resolve(kind, text):
        text = text.strip()
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", text)
        if not m:
            return text
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
            return m.group(2)
        return names[kind].get(m.group(1), "?")

    with open(path, errors="replace") as f:
        for line in f:
            if not line or line == "\n":
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if pending_call:
                    pending_call = False
                    if cfn != fn:  # a recursive call is already in the caller's own cost
                        incl_calls[fn] += cost
                        callers[cfn][fn] += cost
                else:
                    self_fn[fn] += cost
                    self_ob[ob] += cost
                continue
            key, _, value = line.partition("=")
            if key == "ob":
                ob = resolve("ob", value)
            elif key == "cob":
                resolve("ob", value)
            elif key in ("fl", "fi", "fe", "cfi", "cfl"):
                resolve("fl", value)
            elif key == "fn":
                fn = resolve("fn", value)
                fn_ob.setdefault(fn, ob)
            elif key == "cfn":
                cfn = resolve("fn", value)
            elif key == "calls":
                pending_call = True
            elif line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split(":", 1)[1].split()[0]))
    incl = collections.Counter()
    for fn_name in set(self_fn) | set(incl_calls):
        incl[fn_name] = self_fn[fn_name] + incl_calls[fn_name]
    if not total:
        total = sum(self_ob.values())
    return total, self_fn, incl, self_ob, callers, fn_ob


def stage_costs(incl, total):
    out = []
    used = 0
    for label, pats in STAGES:
        matched = []
        for name, v in incl.items():
            for p in pats:
                if (p.endswith("*") and name.startswith(p[:-1])) or name == p:
                    matched.append(v)
                    break
        cost = max(matched, default=0) if label.startswith(ONE_OF) else sum(matched)
        out.append((label, cost))
        used += cost
    out.append((REST, total - used))
    return out


def short_object(path):
    base = os.path.basename(path or "?")
    if base == "tcgw":
        return "tcgw (gateway code)"
    return re.sub(r"\.so(\.[\d.]+)?$", "", base)


def call(conn):
    conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
    for k, v in bl.SEED_HEADERS.items():
        conn.putheader(k, v)
    conn.putheader("Content-Length", str(len(bl.SEED_BODY)))
    conn.endheaders(bl.SEED_BODY)
    resp = conn.getresponse()
    body = resp.read().decode(errors="replace")
    return 200 <= resp.status < 300 and '"RequestId"' in body and '"Error"' not in body, body


def control(flag, pid):
    p = subprocess.run(["callgrind_control", flag, str(pid)], capture_output=True, text=True,
                       timeout=120)
    if p.returncode != 0:
        raise RuntimeError("callgrind_control %s %d failed: %s%s" % (flag, pid, p.stdout,
                                                                   p.stderr))


def profile(workdir, certs, calls, tcgw_config, warmup=20):
    """Runs the profile; returns {"markdown", "total_per_call", "stages", "objects", ...}."""
    os.makedirs(workdir, exist_ok=True)
    up_port = bl.free_port()
    upstream = bl.Nginx(workdir, "upstream", up_port, workers=1)
    upstream.write(bl.upstream_conf(upstream.dir, up_port, certs))
    upstream.start()
    outdir = os.path.join(workdir, "out")
    os.makedirs(outdir, exist_ok=True)
    wrapper = ["valgrind", "--tool=callgrind", "--dump-instr=no", "--vgdb=yes",
               "--callgrind-out-file=%s/callgrind.out.%%p" % outdir]
    cfg = dict(tcgw_config)
    cfg["threads"] = 1  # fewer threads to simulate; the same stages run per call
    gwp = bl.Tcgw(workdir, up_port, certs["ca"], cfg, wrapper=wrapper)
    problems = []
    result = {"calls": calls, "warmup": warmup, "problems": problems}
    try:
        gwp.start(timeout=180.0)
        pid = gwp.proc.pid
        conn = http.client.HTTPConnection("127.0.0.1", gwp.port, timeout=120)
        for _ in range(warmup):
            ok, body = call(conn)
            if not ok:
                raise RuntimeError("warm-up call failed: " + body[:300])
        control("-z", pid)
        t0 = time.monotonic()
        bad = 0
        for _ in range(calls):
            ok, body = call(conn)
            bad += 0 if ok else 1
        elapsed = time.monotonic() - t0
        conn.close()
        control("-d", pid)
        pattern = os.path.join(outdir, "callgrind.out.%d.*" % pid)
        dumps, last_size = [], -1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            dumps = sorted(glob.glob(pattern), key=os.path.getmtime)
            size = os.path.getsize(dumps[-1]) if dumps else -1
            if size > 0 and size == last_size:
                break  # written completely
            last_size = size
            time.sleep(0.5)
        if not dumps:
            raise RuntimeError("callgrind wrote no dump in %s" % outdir)
        if bad:
            problems.append("%d of %d profiled calls did not succeed" % (bad, calls))
        total, self_fn, incl, self_ob, callers, fn_ob = parse_callgrind(dumps[-1])
        stages = stage_costs(incl, total)
        objects = collections.Counter()
        for ob, v in self_ob.items():
            objects[short_object(ob)] += v
        result.update({
            "dump": dumps[-1], "seconds_under_valgrind": elapsed,
            "total_per_call": total / calls,
            "stages": [(label, v / calls) for label, v in stages],
            "objects": [(name, v / calls) for name, v in objects.most_common()],
            "top_functions": [(name, short_object(fn_ob.get(name)), v / calls,
                               [(c, cv / calls) for c, cv in callers[name].most_common(3)])
                              for name, v in self_fn.most_common(12)],
        })
        if stages[-1][1] < 0:
            problems.append("stage functions overlap (the rest is negative)")
        result["markdown"] = markdown(result, cfg)
    finally:
        try:
            gwp.stop()
        except Exception as e:  # noqa: BLE001
            problems.append("tcgw under valgrind: %s" % str(e)[:500])
        upstream.stop()
    if "markdown" not in result:
        result["markdown"] = "(no profile: %s)" % "; ".join(problems)
    return result


def markdown(r, cfg):
    total = r["total_per_call"]
    lines = ["%d sequential seed calls over one keep-alive connection, after %d warm-up calls, "
             "tcgw (%s, `threads` 1) under `valgrind --tool=callgrind`, nginx over TLS "
             "(HTTP/1.1) as the upstream. **%s instructions per call** in user space (the "
             "kernel's work in system calls is not counted)."
             % (r["calls"], r["warmup"],
                "vault_keys_resident" if cfg.get("vault_keys_resident") else
                "default configuration", "{:,}".format(int(total))),
             "", "| stage | instructions per call | share |", "|---|--:|--:|"]
    for label, v in r["stages"]:
        lines.append("| %s | %s | %.1f%% |" % (label, "{:,}".format(int(v)), 100 * v / total))
    lines += ["", "| where the instructions are (self cost by object) | instructions per call "
              "| share |", "|---|--:|--:|"]
    for name, v in r["objects"]:
        if v / total >= 0.001:
            lines.append("| %s | %s | %.1f%% |" % (name, "{:,}".format(int(v)),
                                                  100 * v / total))
    lines += ["", "| busiest functions (self cost) | object | instructions per call | called "
              "mostly from (inclusive per call) |", "|---|---|--:|---|"]
    for name, ob, v, cs in r["top_functions"]:
        lines.append("| `%s` | %s | %s | %s |" % (
            name, ob, "{:,}".format(int(v)),
            ", ".join("`%s` %s" % (c, "{:,}".format(int(cv))) for c, cv in cs) or "-"))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--keep", help="keep the work directory (and the dump) here")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    workdir = args.keep or tempfile.mkdtemp(prefix="tcgw-callgrind-")
    certs = bl.harness.make_certs(os.path.join(workdir, "certs"))
    try:
        r = profile(workdir, certs, args.calls, {"upstream": {"timeout_ms": 60000}}, args.warmup)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(r["markdown"])
    for p in r["problems"]:
        print("FAIL: " + p)
    return 1 if r["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
