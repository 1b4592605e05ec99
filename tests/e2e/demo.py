"""The README's first command: a dev master key, an encrypted dev credential, dev TLS
certificates, the GAAP simulator and the gateway with the shipped example policies, two callers
(capacity-bot with a bearer token, auditor with an SDK key), then the seed call through it as
capacity-bot, and the same call over its policy's limit.

The gateway and the simulator then keep running, and a curl command and Node SDK settings that
work against them are printed, until Ctrl-C (SIGINT) or SIGTERM stops both. --once stops after the
seed call instead.

Everything is made under run/demo/ in the repository (ignored by git; --workdir elsewhere) and kept
between runs, stopping included: keys, credential store, certificates, configuration and logs.
"""
import argparse
import json
import os
import re
import shlex
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gw  # noqa: E402
import harness  # noqa: E402

SEED_HEADERS = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
                "X-TC-Action": "ModifyProxyConfiguration", "X-TC-Version": "2018-05-29"}
TRY_HEADERS = {"Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
               "X-TC-Action": "DescribeProxies", "X-TC-Version": "2018-05-29"}
TRY_BODY = '{"Limit": 5}'
WATCH_INTERVAL = 0.5


class Stop(Exception):
    """Raised by the SIGINT/SIGTERM handler to leave the waiting loop."""


def shipped_policy(root, name):
    with open(os.path.join(root, "policies", name + ".json"), encoding="utf-8") as f:
        return f.read()


def issue_callers(gateway):
    """(Re)creates the two demo callers: a token and an SDK key are printed once, when made."""
    for name in ("capacity-bot", "auditor"):
        gw.run_tcgw(["callers", "remove", name, "--config", gateway.config_path], check=False)
    out = gw.run_tcgw(["callers", "add", "capacity-bot", "--policy", "capacity-bot",
                       "--config", gateway.config_path]).stdout.decode()
    token = gw.token_of(out)
    out = gw.run_tcgw(["callers", "add", "auditor", "--sdk-key", "--policy", "auditor",
                       "--config", gateway.config_path]).stdout.decode()
    secret_id = re.search(r"AKIDtcgw[A-Za-z0-9]{28}", out).group(0)
    secret_key = [w for w in re.split(r"[\s:=\"]+", out)
                  if re.fullmatch(r"[A-Za-z0-9]{32}", w)][0]
    gateway.reload()
    return token, {"secretId": secret_id, "secretKey": secret_key}


def curl_command(port, headers, body):
    """A one-line curl command for the call; --noproxy so proxy variables cannot divert it."""
    words = ["curl", "-sS", "--noproxy", "*", "http://127.0.0.1:%d/" % port]
    for name, value in headers.items():
        words += ["-H", "%s: %s" % (name, value)]
    words += ["--data-binary", body]
    return " ".join(shlex.quote(w) for w in words)


def node_command(port, sdk_key):
    """A one-line node command: the official SDK's CommonClient with the gateway as endpoint,
    signing with the SDK key the gateway issued to the auditor."""
    script = ('const {CommonClient} = require("tencentcloud-sdk-nodejs-common"); '
              'new CommonClient("127.0.0.1:%d/gaap", "2018-05-29", {'
              'credential: {secretId: "%s", secretKey: "%s"}, '
              'profile: {httpProfile: {protocol: "http://"}}})'
              '.request("DescribeProxies", %s)'
              '.then((r) => console.log(JSON.stringify(r)), (e) => console.error(e.message));'
              % (port, sdk_key["secretId"], sdk_key["secretKey"], TRY_BODY))
    return "node -e " + shlex.quote(script)


def print_try_it(root, work, gateway, sim, token, sdk_key):
    node_dir = os.path.join(root, "tests", "node")
    sdk = os.path.join(node_dir, "node_modules", "tencentcloud-sdk-nodejs-common")
    print()
    print("The gateway and the simulator keep running. In another terminal, try:")
    print()
    print("  " + curl_command(gateway.port, dict(TRY_HEADERS, Authorization="Bearer " + token),
                              TRY_BODY))
    print()
    print("or the official Node SDK (tencentcloud-sdk-nodejs-common), from %s:" % node_dir)
    if not os.path.isdir(sdk):
        print("  (install it first: cd %s && npm install)" % shlex.quote(node_dir))
    print()
    print("  " + node_command(gateway.port, sdk_key))
    print()
    print("  endpoint     127.0.0.1:%d/gaap   (the service is taken from the path)"
          % gateway.port)
    print("  protocol     http://   (plain HTTP on loopback: no CA to trust on the caller's side)")
    print("  credential   the SDK key tcgw issued to the caller 'auditor' (tcgw callers add")
    print("               auditor --sdk-key): tcgw checks the SDK's signature, then signs with")
    print("               the credential 'default' from %s" % gateway.store_path)
    print("  proxies      unset HTTP_PROXY/HTTPS_PROXY for node: the SDK would tunnel through them")
    print()
    print("Only the gateway trusts the dev CA (%s), for the simulator that plays" % sim.ca_file)
    print("gaap.tencentcloudapi.com on 127.0.0.1:%d." % sim.port)
    print("Logs: %s (gateway), %s (every request the simulator received)."
          % (gateway.log_path, sim.records_path))
    print()
    print("Press Ctrl-C to stop both (everything under %s is kept)." % work)
    sys.stdout.flush()


def on_signal(signum, frame):
    # Once: a second Ctrl-C while stopping must not cut the clean stop short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stop()


def watch(gateway, sim):
    """Waits for Stop (SIGINT or SIGTERM); raises if either process fails on its own meanwhile."""
    while True:
        # Exit code 0 is a clean stop on a signal: Ctrl-C may reach them before this process.
        rc = gateway.proc.poll()
        if rc is not None:
            if rc == 0:
                on_signal(None, None)
            raise RuntimeError("the gateway exited (%d):\n%s" % (rc, gateway.read_log()))
        rc = sim.proc.poll()
        if rc is not None:
            if rc == 0:
                on_signal(None, None)
            raise RuntimeError("the simulator exited (%d):\n%s" % (rc, sim.stderr_text()))
        time.sleep(WATCH_INTERVAL)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="CMake build directory")
    ap.add_argument("--once", action="store_true",
                    help="stop after the seed call instead of waiting for Ctrl-C")
    ap.add_argument("--workdir", help="where keys, certificates and logs go (run/demo)")
    args = ap.parse_args()
    # Ctrl-C reaches the whole foreground group (both processes stop on SIGINT too); SIGTERM
    # reaches this process alone. Either way both are stopped below and waited for.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    root = gw.repo_root()
    build = os.path.join(root, args.build)
    os.environ.setdefault("TCGW_BIN", os.path.join(build, "tcgw"))
    os.environ.setdefault("TCGW_SIM_BIN", os.path.join(build, "tests", "tcgw-sim"))
    work = os.path.abspath(args.workdir or os.path.join(root, "run", "demo"))
    os.makedirs(work, exist_ok=True)

    sim = harness.Simulator()
    gateway = None
    try:
        certs = harness.make_certs(os.path.join(work, "certs"))
        sim.start(os.path.join(work, "sim"), {gw.DEV_SECRET_ID: gw.DEV_SECRET_KEY}, certs=certs)
        gateway = gw.Gateway(work, sim.port, sim.ca_file, callers={}, unauthenticated_caller=None,
                             policies={name: shipped_policy(root, name)
                                       for name in ("capacity-bot", "auditor")})
        gateway.start()
        token, sdk_key = issue_callers(gateway)
        print("simulator  https://gaap.tencentcloudapi.com -> 127.0.0.1:%d (dev CA %s)"
              % (sim.port, sim.ca_file))
        print("gateway    http://127.0.0.1:%d  (config %s)" % (gateway.port, gateway.config_path))
        print("credential 'default' stored encrypted in %s" % gateway.store_path)
        print("callers    capacity-bot (bearer token, policy %s)"
              % os.path.join(gateway.policy_dir, "capacity-bot.json"))
        print("           auditor (SDK key, policy %s)"
              % os.path.join(gateway.policy_dir, "auditor.json"))
        print()
        seed_headers = dict(SEED_HEADERS, Authorization="Bearer " + token)
        print("POST / HTTP/1.1\n"
              + "".join("%s: %s\n" % kv for kv in seed_headers.items())
              + "\n" + gw.SEED_BODY.decode())
        print()
        status, headers, body = gateway.request("POST", "/", seed_headers, gw.SEED_BODY)
        print("HTTP %d" % status)
        print(body.decode())
        rec = sim.records()[-1]
        print()
        print("the simulator verified the signature: %s"
              % ("yes" if rec["error_code"] is None else "no, " + rec["error_code"]))
        print("Authorization it received: %s" % rec["headers"]["authorization"])
        over = dict(json.loads(gw.SEED_BODY), Bandwidth="200")
        _, _, refused = gateway.request("POST", "/", seed_headers, json.dumps(over).encode())
        print()
        print("the same call with Bandwidth 200, over capacity-bot's policy (not sent):")
        print(refused.decode())
        sys.stdout.flush()
        ok = status == 200 and b'"Error"' not in body
        if args.once or not ok:
            return 0 if ok else 1
        try:
            # From the first line of the instructions on, a stop signal is the normal end.
            print_try_it(root, work, gateway, sim, token, sdk_key)
            watch(gateway, sim)
        except Stop:
            print()
            print("stopping the gateway and the simulator")
        return 0
    except Stop:
        print("interrupted before the demo was ready", file=sys.stderr)
        return 130
    finally:
        try:
            if gateway is not None:
                gateway.stop()
        finally:
            sim.stop()
        if not args.once:
            print("stopped; everything under %s is kept for the next run" % work)


if __name__ == "__main__":
    sys.exit(main())
