"""The README's first command: a dev master key, an encrypted dev credential, dev TLS
certificates, the GAAP simulator and the gateway, then the seed call through it.

Everything is made under run/demo/ in the repository (ignored by git) and kept between runs.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gw  # noqa: E402
import harness  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", default="build", help="CMake build directory")
    args = ap.parse_args()
    root = gw.repo_root()
    build = os.path.join(root, args.build)
    os.environ.setdefault("TCGW_BIN", os.path.join(build, "tcgw"))
    os.environ.setdefault("TCGW_SIM_BIN", os.path.join(build, "tests", "tcgw-sim"))
    work = os.path.join(root, "run", "demo")
    os.makedirs(work, exist_ok=True)

    certs = harness.make_certs(os.path.join(work, "certs"))
    sim = harness.Simulator().start(os.path.join(work, "sim"),
                                    {gw.DEV_SECRET_ID: gw.DEV_SECRET_KEY}, certs=certs)
    gateway = gw.Gateway(work, sim.port, sim.ca_file)
    try:
        gateway.start()
        print("simulator  https://gaap.tencentcloudapi.com -> 127.0.0.1:%d (dev CA %s)"
              % (sim.port, sim.ca_file))
        print("gateway    http://127.0.0.1:%d  (config %s)" % (gateway.port, gateway.config_path))
        print("credential 'default' stored encrypted in %s" % gateway.store_path)
        print()
        print("POST / HTTP/1.1\nHost: gaap.tencentcloudapi.com\nContent-Type: application/json\n"
              "X-TC-Action: ModifyProxyConfiguration\nX-TC-Version: 2018-05-29\n\n"
              + gw.SEED_BODY.decode())
        print()
        status, headers, body = gateway.request("POST", "/", {
            "Host": "gaap.tencentcloudapi.com", "Content-Type": "application/json",
            "X-TC-Action": "ModifyProxyConfiguration", "X-TC-Version": "2018-05-29"},
            gw.SEED_BODY)
        print("HTTP %d" % status)
        print(body.decode())
        rec = sim.records()[-1]
        print()
        print("the simulator verified the signature: %s"
              % ("yes" if rec["error_code"] is None else "no, " + rec["error_code"]))
        print("Authorization it received: %s" % rec["headers"]["authorization"])
        return 0 if status == 200 and b'"Error"' not in body else 1
    finally:
        gateway.stop()
        sim.stop()


if __name__ == "__main__":
    sys.exit(main())
