"""The deploy bundle and the shipped configs as an operator uses them: promtool accepts the
alert rules and their unit tests, `archie check-config` accepts the ConfigMap's archie.toml,
examples/archie.toml and the example in CONFIGURE.md, and the manifests agree with the config
they carry. Servers: none (runs the archie binary and /usr/bin/promtool)."""
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
import unittest

from tests.integration.archie_process import ARCHIE_BIN, REPO

try:
    import yaml
except ImportError:  # the manifest checks need PyYAML (Debian: python3-yaml)
    yaml = None

DEPLOY = os.path.join(REPO, "deploy")
ALERTS = os.path.join(DEPLOY, "prometheus", "archie-alerts.yaml")
ALERT_TESTS = os.path.join(DEPLOY, "prometheus", "archie-alerts.test.yaml")
EXAMPLE = os.path.join(REPO, "examples", "archie.toml")
CONFIGURE_MD = os.path.join(REPO, "CONFIGURE.md")
SECRET_MOUNT = "/var/run/secrets/archie/"
EXAMPLE_ENV = {
    "ARCHIE_NATS_PASSWORD": "example-nats-password",
    "ARCHIE_MINIO_ACCESS_KEY_ID": "MINIOEXAMPLEVALUE001",
    "ARCHIE_MINIO_SECRET_ACCESS_KEY": "example-minio-secret-key-value",
    "ARCHIE_BACKUP_ACCESS_KEY_ID": "AKIDEXAMPLEVALUE0001",
    "ARCHIE_BACKUP_SECRET_ACCESS_KEY": "example-secret-access-key-value",
}


def promtool():
    path = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.access(path, os.X_OK):
        raise AssertionError("promtool not found (Debian package: prometheus)")
    return path


def check_config(path, env=None):
    """Runs `archie check-config --config PATH` with no ARCHIE_* variables but those in env."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIE_")}
    full_env.update(env or {})
    return subprocess.run([ARCHIE_BIN, "check-config", "--config", path], capture_output=True, text=True,
                          env=full_env, timeout=30)


def seconds(duration):
    """Seconds in an archie duration string such as "30s" (same grammar as the binary)."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", duration)
    if not m:
        raise ValueError(duration)
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def load_yaml(name):
    with open(os.path.join(DEPLOY, name)) as f:
        return yaml.safe_load(f)


def configure_md_example():
    """The TOML block of CONFIGURE.md's "Complete example" section."""
    with open(CONFIGURE_MD) as f:
        text = f.read()
    section = text[text.index("## Complete example"):]
    return re.search(r"```toml\n(.*?)```", section, re.S).group(1)


class PrometheusRulesTest(unittest.TestCase):
    def test_promtool_accepts_the_alert_rules(self):
        r = subprocess.run([promtool(), "check", "rules", ALERTS], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout + r.stderr)

    def test_alert_rule_unit_tests_pass(self):
        r = subprocess.run([promtool(), "test", "rules", ALERT_TESTS], capture_output=True, text=True,
                           timeout=120, cwd=os.path.dirname(ALERT_TESTS))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout + r.stderr)

    @unittest.skipIf(yaml is None, "PyYAML missing")
    def test_every_alert_is_tested_firing_and_silent_and_is_annotated(self):
        with open(ALERTS) as f:
            rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"] if "alert" in r]
        with open(ALERT_TESTS) as f:
            cases = [c for t in yaml.safe_load(f)["tests"] for c in t.get("alert_rule_test", [])]
        self.assertEqual({r["alert"] for r in rules},
                         {"ArchieDown", "ArchieNatsDisconnected", "ArchieNotReady", "ArchieDeadLetters",
                          "ArchieNakRateHigh", "ArchieAckFailures"})
        for rule in rules:
            name = rule["alert"]
            with self.subTest(alert=name):
                self.assertIn(rule["labels"].get("severity"), ("critical", "warning"))
                for key in ("summary", "description", "runbook"):
                    self.assertTrue(rule["annotations"].get(key), key)
                mine = [c for c in cases if c["alertname"] == name]
                self.assertTrue(any(c.get("exp_alerts") for c in mine), "no case where it fires")
                self.assertTrue(any(not c.get("exp_alerts") for c in mine), "no case where it stays silent")


@unittest.skipIf(yaml is None, "PyYAML missing")
class DeployConfigTest(unittest.TestCase):
    def setUp(self):
        self.toml_text = load_yaml("configmap.yaml")["data"]["archie.toml"]
        self.cfg = tomllib.loads(self.toml_text)
        self.secret_values = load_yaml("secret.example.yaml")["stringData"]

    def test_configmap_config_passes_check_config_with_the_secret_mounted(self):
        with tempfile.TemporaryDirectory() as mount:
            for key, value in self.secret_values.items():
                with open(os.path.join(mount, key), "w") as f:
                    f.write(value + "\n")  # as a Secret volume may hold it
            path = os.path.join(mount, "archie.toml")
            with open(path, "w") as f:
                f.write(self.toml_text.replace(SECRET_MOUNT, mount + "/"))
            r = check_config(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("is valid", r.stderr)
        self.assertIn(f"<redacted, file {mount}/nats-password>", r.stdout)
        for value in self.secret_values.values():
            self.assertNotIn(value, r.stdout + r.stderr)

    def test_every_secret_file_the_config_names_is_a_key_of_the_secret(self):
        named = set(re.findall(re.escape(SECRET_MOUNT) + r"([A-Za-z0-9._-]+)", self.toml_text))
        self.assertTrue(named)
        self.assertLessEqual(named, set(self.secret_values))

    def test_deployment_runs_the_configmap_and_mounts_the_secret_where_the_config_expects(self):
        pod = load_yaml("deployment.yaml")["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        self.assertEqual(c["command"] + c["args"], ["archie", "run", "--config", "/etc/archie/archie.toml"])
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        self.assertEqual(mounts["config"], "/etc/archie")
        self.assertEqual(volumes["config"]["configMap"]["name"], load_yaml("configmap.yaml")["metadata"]["name"])
        self.assertEqual(mounts["secrets"].rstrip("/") + "/", SECRET_MOUNT)
        self.assertEqual(volumes["secrets"]["secret"]["secretName"],
                         load_yaml("secret.example.yaml")["metadata"]["name"])

    def test_ports_probes_and_scrape_annotations_match_http_port(self):
        port = self.cfg["http"]["port"]
        template = load_yaml("deployment.yaml")["spec"]["template"]
        (c,) = template["spec"]["containers"]
        self.assertIn({"name": "http-admin", "containerPort": port, "protocol": "TCP"}, c["ports"])
        self.assertEqual(c["livenessProbe"]["httpGet"], {"path": "/live", "port": "http-admin"})
        self.assertEqual(c["readinessProbe"]["httpGet"], {"path": "/ready", "port": "http-admin"})
        notes = template["metadata"]["annotations"]
        self.assertEqual((notes["prometheus.io/scrape"], notes["prometheus.io/port"], notes["prometheus.io/path"]),
                         ("true", str(port), "/metrics"))
        (svc_port,) = load_yaml("service.yaml")["spec"]["ports"]
        self.assertEqual((svc_port["port"], svc_port["targetPort"]), (port, "http-admin"))

    def test_grace_period_outlasts_the_drain(self):
        pod = load_yaml("deployment.yaml")["spec"]["template"]["spec"]
        drain = seconds(self.cfg["worker"]["shutdown_wait"]) + seconds(self.cfg["queue"]["fetch_expires"])
        self.assertGreater(pod["terminationGracePeriodSeconds"], drain + 2)

    def test_pod_runs_as_non_root_on_a_read_only_root_with_a_memory_limit(self):
        pod = load_yaml("deployment.yaml")["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        self.assertFalse(c["securityContext"]["allowPrivilegeEscalation"])
        self.assertRegex(c["resources"]["limits"]["memory"], r"^\d+Mi$")
        self.assertGreater(int(c["resources"]["limits"]["memory"][:-2]), 64)

    def test_memory_limit_is_the_buffer_budget_plus_64_mib(self):
        (c,) = load_yaml("deployment.yaml")["spec"]["template"]["spec"]["containers"]
        budget = self.cfg["replication"]["buffer_budget_mib"]
        self.assertEqual(c["resources"]["limits"]["memory"], f"{budget + 64}Mi")

    def test_keda_watches_the_configured_consumer_and_cannot_outgrow_max_ack_pending(self):
        so = load_yaml("scaledobject.yaml")["spec"]
        (trigger,) = so["triggers"]
        meta = trigger["metadata"]
        self.assertEqual(trigger["type"], "nats-jetstream")
        self.assertEqual(so["scaleTargetRef"]["name"], load_yaml("deployment.yaml")["metadata"]["name"])
        self.assertEqual(meta["stream"], self.cfg["queue"]["stream"]["name"])
        self.assertEqual(meta["consumer"], self.cfg["queue"]["consumer"]["durable"])
        self.assertEqual(meta["account"], "$G")
        self.assertRegex(meta["natsServerMonitoringEndpoint"], r"^[^/:]+:\d+$")  # host:port, no scheme
        concurrency = self.cfg["worker"]["concurrency"]
        # In-flight events count as lag: a threshold below concurrency scales a busy fleet forever.
        self.assertGreaterEqual(int(meta["lagThreshold"]), concurrency)
        self.assertGreaterEqual(so["minReplicaCount"], 1)  # ArchieDown assumes a worker always runs
        self.assertLessEqual(so["maxReplicaCount"] * concurrency, self.cfg["queue"]["consumer"]["max_ack_pending"])

    def test_kustomization_lists_the_manifests_but_not_the_example_secret(self):
        resources = load_yaml("kustomization.yaml")["resources"]
        self.assertEqual(sorted(resources), ["configmap.yaml", "deployment.yaml", "scaledobject.yaml", "service.yaml"])

    def test_every_deploy_file_is_valid_yaml(self):
        for root, _, files in os.walk(DEPLOY):
            for name in files:
                if name.endswith((".yaml", ".yml")):
                    with self.subTest(file=name), open(os.path.join(root, name)) as f:
                        docs = [d for d in yaml.safe_load_all(f) if d is not None]
                        self.assertTrue(docs)


class ExampleConfigTest(unittest.TestCase):
    def test_example_config_is_valid_with_its_env_vars_set(self):
        r = check_config(EXAMPLE, env=EXAMPLE_ENV)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("<redacted, env ARCHIE_BACKUP_SECRET_ACCESS_KEY>", r.stdout)
        for value in EXAMPLE_ENV.values():
            self.assertNotIn(value, r.stdout + r.stderr)

    def test_example_config_reads_the_s3_secrets_from_the_environment(self):
        r = check_config(EXAMPLE, env={"ARCHIE_NATS_PASSWORD": "x"})
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("stores.backup.access_key_id_env: environment variable ARCHIE_BACKUP_ACCESS_KEY_ID", r.stderr)
        self.assertIn("stores.backup.secret_access_key_env: environment variable ARCHIE_BACKUP_SECRET_ACCESS_KEY",
                      r.stderr)

    def test_configure_md_complete_example_is_valid(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write(configure_md_example())
        try:
            r = check_config(f.name, env=EXAMPLE_ENV)
        finally:
            os.unlink(f.name)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_configure_md_complete_example_is_examples_archie_toml(self):
        with open(EXAMPLE) as f:
            self.assertEqual(configure_md_example(), f.read())

    def test_configure_md_documents_every_key_the_binary_reads(self):
        # The effective config lists every key the binary read, defaults included.
        r = check_config(EXAMPLE, env=EXAMPLE_ENV)
        self.assertEqual(r.returncode, 0, r.stderr)
        effective = tomllib.loads(r.stdout)
        with open(CONFIGURE_MD) as f:
            doc = f.read()
        sections = re.split(r"\n(?=#{2,3} )", doc)

        def section_for(heading_marker):
            found = [s for s in sections if heading_marker in s.splitlines()[0]]
            self.assertTrue(found, f"CONFIGURE.md has no heading containing {heading_marker}")
            return found[0]

        def walk(table, path, arrays=frozenset()):
            """arrays: the positions in path that are arrays of tables ([[route]])."""
            for key, value in table.items():
                if isinstance(value, dict):
                    walk(value, path + [key], arrays)
                    continue
                if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                    for item in value:
                        walk(item, path + [key], arrays | {len(path)})
                    continue
                if path[:1] == ["stores"]:
                    # `type` is documented for all stores, the rest per store type.
                    marker = "`[stores.NAME]`" if key == "type" else f'`type = "{table["type"]}"`'
                    shown = f"stores.NAME.{key}"
                else:
                    name = ".".join(path)
                    # [[route]] and [[route.destinations]] have headings of that form.
                    marker = f"`[[{name}]]`" if len(path) - 1 in arrays else f"`[{name}]`"
                    shown = ".".join(path + [key])
                with self.subTest(key=shown):
                    self.assertIn(f"`{key}`", section_for(marker))

        walk(effective, [])


if __name__ == "__main__":
    unittest.main()
