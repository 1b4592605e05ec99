"""The deployment examples of deploy/: the systemd unit passes `systemd-analyze verify` and keeps
its sandboxing; the Kubernetes sidecar manifest parses (python3-yaml) and has what the sidecar
needs: two containers, probes on the admin port, secrets from a Secret, and a tcgw config that
the gateway itself accepts. (No Kubernetes schema validator is packaged in Debian 12.)"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import gw

DEPLOY = os.path.join(gw.repo_root(), "deploy")
UNIT = os.path.join(DEPLOY, "systemd", "tcgw.service")
MANIFEST = os.path.join(DEPLOY, "kubernetes", "sidecar.yaml")


def unit_settings(path):
    settings = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", "[")) and "=" in line:
                key, value = line.split("=", 1)
                settings.setdefault(key, []).append(value)
    return settings


class SystemdUnit(unittest.TestCase):

    def test_sandboxing(self):
        s = unit_settings(UNIT)
        for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                           ("PrivateTmp", "yes"), ("MemoryDenyWriteExecute", "yes"),
                           ("ProtectHome", "yes"), ("DynamicUser", "yes")]:
            self.assertEqual(s.get(key), [value], key)
        self.assertEqual(s["ReadWritePaths"], ["/var/lib/tcgw/audit"])
        self.assertEqual(s["ExecReload"], ["/bin/kill -HUP $MAINPID"])
        with open(os.path.join(DEPLOY, "systemd", "tcgw.json")) as f:
            config = json.load(f)
        self.assertTrue(config["audit"]["file"].startswith("/var/lib/tcgw/audit/"))

    def test_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze is not installed (Debian package systemd)")
        with tempfile.TemporaryDirectory() as d:
            # verify wants ExecStart's binary to exist: point it at the one just built.
            with open(UNIT) as f:
                text = f.read().replace("/usr/local/bin/tcgw", os.path.abspath(gw.tcgw_bin()))
            path = os.path.join(d, "tcgw.service")
            with open(path, "w") as f:
                f.write(text)
            proc = subprocess.run([analyze, "verify", path], capture_output=True, timeout=60)
        out = (proc.stdout + proc.stderr).decode(errors="replace")
        self.assertEqual(proc.returncode, 0, out)
        self.assertNotIn("tcgw.service:", out)  # no warning about the unit itself


class SidecarManifest(unittest.TestCase):

    def setUp(self):
        try:
            import yaml
        except ImportError:
            self.skipTest("python3-yaml is not installed")
        with open(MANIFEST) as f:
            self.docs = list(yaml.safe_load_all(f))
        self.by_kind = {}
        for doc in self.docs:
            for key in ("apiVersion", "kind", "metadata"):
                self.assertIn(key, doc)
            self.assertIn("name", doc["metadata"])
            self.by_kind.setdefault(doc["kind"], []).append(doc)

    def test_pod(self):
        (deploy,) = self.by_kind["Deployment"]
        self.assertEqual(deploy["apiVersion"], "apps/v1")
        spec = deploy["spec"]
        self.assertEqual(spec["selector"]["matchLabels"].items() <=
                         spec["template"]["metadata"]["labels"].items(), True)
        pod = spec["template"]["spec"]
        names = [c["name"] for c in pod["containers"]]
        self.assertEqual(sorted(names), ["app", "tcgw"])
        tcgw = next(c for c in pod["containers"] if c["name"] == "tcgw")
        admin = next(p for p in tcgw["ports"] if p["name"] == "admin")
        self.assertEqual(admin["containerPort"], 9090)
        self.assertEqual(tcgw["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "admin"})
        self.assertEqual(tcgw["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "admin"})
        volumes = {v["name"]: v for v in pod["volumes"]}
        for mount in tcgw["volumeMounts"] + [m for c in pod.get("initContainers", [])
                                             for m in c["volumeMounts"]]:
            self.assertIn(mount["name"], volumes)
        self.assertEqual(volumes["secrets"]["secret"]["secretName"], "tcgw-secrets")
        self.assertEqual(tcgw["securityContext"]["allowPrivilegeEscalation"], False)
        app = next(c for c in pod["containers"] if c["name"] == "app")
        self.assertIn({"name": "TENCENTCLOUD_ENDPOINT", "value": "http://127.0.0.1:8080"},
                      app["env"])

    def test_config_is_accepted_by_the_gateway(self):
        config = json.loads(next(d for d in self.by_kind["ConfigMap"]
                                 if d["metadata"]["name"] == "tcgw-config")["data"]["tcgw.json"])
        self.assertEqual(config["admin"]["listen_port"], 9090)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tcgw.json")
            with open(path, "w") as f:
                json.dump(config, f)
            # The files it names do not exist here: the config is judged, then the first file is
            # missing. A refused key would be named instead.
            proc = gw.run_tcgw(["serve", "--config", path], check=False)
        err = proc.stderr.decode(errors="replace")
        self.assertNotEqual(proc.returncode, 0)
        self.assertNotIn("tcgw.json:", err)
        for doc in self.by_kind["ConfigMap"]:
            if doc["metadata"]["name"] == "tcgw-policies":
                for text in doc["data"].values():
                    json.loads(text)


if __name__ == "__main__":
    unittest.main()
