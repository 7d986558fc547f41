"""The deploy bundle and the shipped configs as an operator uses them: promtool accepts the
alert rules and their unit tests, `archie check-config` accepts the bundle's archie.toml,
examples/archie.toml and the example in CONFIGURE.md, the manifests agree with the config
they carry, and `kubectl kustomize` renders the base, the complete bundle and a namePrefix
overlay with every reference intact, and two installs side by side in one namespace never select
each other's pods and stay apart in the alerts and the dashboard. Servers: none (runs the archie
binary, /usr/bin/promtool and kubectl's built-in kustomize)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
import unittest
import urllib.parse

from testkit.paths import ARCHIE_BIN, REPO

try:
    import yaml
except ImportError:  # the manifest checks need PyYAML (Debian: python3-yaml)
    yaml = None

DEPLOY = os.path.join(REPO, "deploy")
BASE = os.path.join(DEPLOY, "base")
BUNDLE_TOML = os.path.join(BASE, "archie.toml")
SCALED_OBJECT = os.path.join("components", "keda", "scaledobject.yaml")
PROMETHEUS_RULE = os.path.join(DEPLOY, "components", "monitoring", "prometheusrule.yaml")
DASHBOARD = os.path.join(DEPLOY, "components", "monitoring", "archie-dashboard.json")
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
    """A manifest of the bundle, by its path under deploy/ (base/ is tried first)."""
    path = os.path.join(BASE, name)
    if not os.path.exists(path):
        path = os.path.join(DEPLOY, name)
    with open(path) as f:
        return yaml.safe_load(f)


def kubectl():
    path = shutil.which("kubectl")
    if not path:
        raise AssertionError("kubectl not found (its built-in kustomize renders the bundle)")
    return path


def kustomize(directory):
    """The objects `kubectl kustomize DIRECTORY` renders, as a list of dicts."""
    r = subprocess.run([kubectl(), "kustomize", directory], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed: {r.stderr}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def by_kind(objects, kind):
    found = [o for o in objects if o["kind"] == kind]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind}, found {len(found)}")
    return found[0]


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
                          "ArchieNakRateHigh", "ArchieAckFailures", "ArchieBacklogGrowing", "ArchieBacklogOld",
                          "ArchieProcessingStalled", "ArchieStoreErrors", "ArchieRestartLoop"})
        for rule in rules:
            name = rule["alert"]
            with self.subTest(alert=name):
                self.assertIn(rule["labels"].get("severity"), ("critical", "warning"))
                for key in ("summary", "description", "runbook_url"):
                    self.assertTrue(rule["annotations"].get(key), key)
                mine = [c for c in cases if c["alertname"] == name]
                self.assertTrue(any(c.get("exp_alerts") for c in mine), "no case where it fires")
                self.assertTrue(any(not c.get("exp_alerts") for c in mine), "no case where it stays silent")


@unittest.skipIf(yaml is None, "PyYAML missing")
class DeployConfigTest(unittest.TestCase):
    def setUp(self):
        with open(BUNDLE_TOML) as f:
            self.toml_text = f.read()
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
        (generator,) = load_yaml("kustomization.yaml")["configMapGenerator"]
        self.assertEqual(volumes["config"]["configMap"]["name"], generator["name"])
        self.assertEqual(generator["files"], ["archie.toml"])
        self.assertEqual([i["key"] for i in volumes["config"]["configMap"]["items"]], ["archie.toml"])
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
        abort_grace = 5  # after shutdown_wait, cancelled copies abort their uploads (worker_service.cpp)
        drain = (seconds(self.cfg["worker"]["shutdown_wait"]) + abort_grace +
                 seconds(self.cfg["queue"]["fetch_expires"]))
        self.assertGreater(pod["terminationGracePeriodSeconds"], drain + 2)

    def test_pod_runs_as_non_root_on_a_read_only_root_with_a_memory_limit(self):
        pod = load_yaml("deployment.yaml")["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        self.assertFalse(c["securityContext"]["allowPrivilegeEscalation"])
        self.assertRegex(c["resources"]["limits"]["memory"], r"^\d+Mi$")
        self.assertGreater(int(c["resources"]["limits"]["memory"][:-2]), 64)

    def test_memory_request_and_limit_are_the_buffer_budget_plus_64_mib(self):
        (c,) = load_yaml("deployment.yaml")["spec"]["template"]["spec"]["containers"]
        budget = self.cfg["replication"]["buffer_budget_mib"]
        self.assertEqual(c["resources"]["limits"]["memory"], f"{budget + 64}Mi")
        # A busy worker's RSS reaches budget + 64 MiB and stays: the request reserves it.
        self.assertEqual(c["resources"]["requests"]["memory"], f"{budget + 64}Mi")

    def test_keda_watches_the_configured_consumer_and_cannot_outgrow_max_ack_pending(self):
        so = load_yaml(SCALED_OBJECT)["spec"]
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
        self.assertEqual(sorted(resources), ["deployment.yaml", "networkpolicy.yaml", "poddisruptionbudget.yaml",
                                             "service.yaml", "serviceaccount.yaml"])
        with open(os.path.join(DEPLOY, "kustomization.yaml")) as f:
            bundle = yaml.safe_load(f)
        self.assertEqual(bundle["resources"], ["base"])
        self.assertEqual(sorted(bundle["components"]), ["components/keda", "components/monitoring"])

    def test_network_policy_opens_the_admin_port_and_reaches_nats_dns_and_every_store(self):
        policy = load_yaml("networkpolicy.yaml")["spec"]
        (c,) = load_yaml("deployment.yaml")["spec"]["template"]["spec"]["containers"]
        self.assertEqual(policy["podSelector"]["matchLabels"],
                         load_yaml("deployment.yaml")["spec"]["selector"]["matchLabels"])
        self.assertEqual(sorted(policy["policyTypes"]), ["Egress", "Ingress"])
        (ingress,) = policy["ingress"]
        (port,) = ingress["ports"]
        admin = next(p for p in c["ports"] if p["name"] == port["port"])
        self.assertEqual(admin["containerPort"], self.cfg["http"]["port"])
        egress_ports = {(p["port"], p.get("protocol", "TCP")) for rule in policy["egress"] for p in rule["ports"]}
        self.assertIn((53, "UDP"), egress_ports)
        for url in self.cfg["nats"]["urls"]:
            self.assertIn((int(url.rsplit(":", 1)[1]), "TCP"), egress_ports, url)
        for name, store in self.cfg["stores"].items():
            if "endpoint" in store:
                scheme, rest = store["endpoint"].split("://", 1)
                host = rest.split("/", 1)[0]
                port = int(host.rsplit(":", 1)[1]) if ":" in host else {"http": 80, "https": 443}[scheme]
                self.assertIn((port, "TCP"), egress_ports, f"store {name} at {store['endpoint']}")

    def test_pod_disruption_budget_lets_a_single_replica_drain(self):
        pdb = load_yaml("poddisruptionbudget.yaml")["spec"]
        # minAvailable: 1 with one replica (KEDA's minimum) would block every node drain.
        self.assertNotIn("minAvailable", pdb)
        self.assertEqual(pdb["maxUnavailable"], 1)
        pod_selector = load_yaml("deployment.yaml")["spec"]["selector"]["matchLabels"]
        self.assertEqual(pdb["selector"]["matchLabels"], pod_selector)

    def test_pods_run_as_the_service_account_without_a_token(self):
        sa = load_yaml("serviceaccount.yaml")
        pod = load_yaml("deployment.yaml")["spec"]["template"]["spec"]
        self.assertEqual(pod["serviceAccountName"], sa["metadata"]["name"])
        self.assertFalse(sa["automountServiceAccountToken"])
        self.assertFalse(pod["automountServiceAccountToken"])

    def test_every_deploy_file_is_valid_yaml_or_json(self):
        for root, _, files in os.walk(DEPLOY):
            for name in files:
                with self.subTest(file=name), open(os.path.join(root, name)) as f:
                    if name.endswith((".yaml", ".yml")):
                        docs = [d for d in yaml.safe_load_all(f) if d is not None]
                        self.assertTrue(docs)
                    elif name.endswith(".json"):
                        self.assertIsInstance(json.load(f), dict)


@unittest.skipIf(yaml is None, "PyYAML missing")
class KustomizeTest(unittest.TestCase):
    """What `kubectl apply -k` would send, rendered by kubectl's own kustomize."""

    def pod_labels(self, objects):
        return by_kind(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]

    def assert_selects(self, selector, labels):
        self.assertTrue(selector)
        self.assertLessEqual(selector.items(), labels.items(), f"{selector} does not select {labels}")

    def test_base_needs_no_custom_resources(self):
        objects = kustomize(BASE)
        self.assertEqual(sorted(o["kind"] for o in objects),
                         ["ConfigMap", "Deployment", "NetworkPolicy", "PodDisruptionBudget", "Service",
                          "ServiceAccount"])
        for o in objects:
            self.assertNotRegex(o["apiVersion"], r"keda\.sh|monitoring\.coreos\.com")
            self.assertEqual(o["metadata"]["namespace"], "archie")

    def test_complete_bundle_puts_everything_in_one_namespace(self):
        objects = kustomize(DEPLOY)
        kinds = sorted(o["kind"] for o in objects)
        self.assertEqual(kinds, ["ConfigMap", "ConfigMap", "Deployment", "NetworkPolicy", "PodDisruptionBudget",
                                 "PrometheusRule", "ScaledObject", "Service", "ServiceAccount", "ServiceMonitor"])
        self.assertEqual({o["metadata"]["namespace"] for o in objects}, {"archie"})

    def test_a_config_change_renames_the_config_map_and_so_rolls_the_pods(self):
        before = kustomize(BASE)
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "base")
            shutil.copytree(BASE, copy)
            with open(os.path.join(copy, "archie.toml"), "a") as f:
                f.write("\n# an edit\n")
            after = kustomize(copy)
        names = []
        for objects in (before, after):
            cm = by_kind(objects, "ConfigMap")
            self.assertRegex(cm["metadata"]["name"], r"^archie-config-[a-z0-9]{10}$")
            volumes = {v["name"]: v for v in by_kind(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]}
            self.assertEqual(volumes["config"]["configMap"]["name"], cm["metadata"]["name"])
            names.append(cm["metadata"]["name"])
        self.assertNotEqual(names[0], names[1])  # a new pod template, hence a rollout

    def test_name_prefix_and_suffix_overlay_keeps_every_reference(self):
        with tempfile.TemporaryDirectory() as overlay:
            with open(os.path.join(overlay, "kustomization.yaml"), "w") as f:
                yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                                "namePrefix": "blue-", "nameSuffix": "-eu",
                                "resources": [os.path.relpath(DEPLOY, overlay)]}, f)
            objects = kustomize(overlay)
        deployment = by_kind(objects, "Deployment")
        self.assertEqual(deployment["metadata"]["name"], "blue-archie-eu")
        # Without components/keda/keda-name-reference.yaml this stays "archie": KEDA would
        # scale nothing.
        self.assertEqual(by_kind(objects, "ScaledObject")["spec"]["scaleTargetRef"]["name"], "blue-archie-eu")
        pod = deployment["spec"]["template"]["spec"]
        self.assertEqual(pod["serviceAccountName"], by_kind(objects, "ServiceAccount")["metadata"]["name"])
        config_maps = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
        volumes = {v["name"]: v for v in pod["volumes"]}
        self.assertIn(volumes["config"]["configMap"]["name"], config_maps)
        self.assertTrue(volumes["config"]["configMap"]["name"].startswith("blue-archie-config-"))
        # Selectors are labels, which prefixes do not touch: they still find the pods.
        labels = self.pod_labels(objects)
        service = by_kind(objects, "Service")
        self.assert_selects(service["spec"]["selector"], labels)
        self.assert_selects(by_kind(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], labels)
        self.assert_selects(by_kind(objects, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"], labels)
        self.assert_selects(by_kind(objects, "ServiceMonitor")["spec"]["selector"]["matchLabels"],
                            service["metadata"]["labels"])

    def test_service_monitor_scrapes_the_admin_port_as_job_archie(self):
        objects = kustomize(DEPLOY)
        monitor = by_kind(objects, "ServiceMonitor")["spec"]
        service = by_kind(objects, "Service")
        (endpoint,) = monitor["endpoints"]
        self.assertEqual(endpoint["port"], service["spec"]["ports"][0]["name"])
        self.assertEqual(endpoint["path"], "/metrics")
        # The job is the install's instance name: "archie" for the bundle as shipped.
        self.assertEqual(monitor["jobLabel"], "app.kubernetes.io/instance")
        self.assertEqual(service["metadata"]["labels"][monitor["jobLabel"]], "archie")

    def test_prometheus_rule_holds_exactly_the_tested_rule_file(self):
        with open(ALERTS) as f:
            tested = yaml.safe_load(f)
        rule = by_kind(kustomize(DEPLOY), "PrometheusRule")
        self.assertEqual(rule["spec"]["groups"], tested["groups"])
        r = subprocess.run([os.path.join(REPO, "scripts", "gen-prometheusrule"), "--check"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_grafana_dashboard_is_shipped_with_the_sidecar_label(self):
        objects = kustomize(DEPLOY)
        (cm,) = [o for o in objects if o["kind"] == "ConfigMap" and "archie-dashboard.json" in o.get("data", {})]
        self.assertEqual(cm["metadata"]["labels"]["grafana_dashboard"], "1")
        with open(DASHBOARD) as f:
            self.assertEqual(json.loads(cm["data"]["archie-dashboard.json"]), json.load(f))


INSTANCE = "app.kubernetes.io/instance"
README = os.path.join(DEPLOY, "README.md")
# An aggregation and its grouping clause, prefix form only (`sum by (a) (...)`).
AGGREGATION = re.compile(r"\b(sum|min|max|avg|group|count|count_values|stddev|stdvar|topk|bottomk|quantile)\s*"
                         r"(?:(by|without)\s*\(([^)]*)\)\s*)?\(")
VECTOR_MATCHING = re.compile(r"\b(on|ignoring)\s*\(([^)]*)\)")


def project_version():
    """The version meson.build declares in project()."""
    with open(os.path.join(REPO, "meson.build")) as f:
        return re.search(r"project\(.*?\bversion:\s*'([^']+)'", f.read(), re.S).group(1)


def selects(selector, labels):
    """Whether a Kubernetes label selector selects an object with these labels: a
    LabelSelector (matchLabels, matchExpressions) or a Service's plain map."""
    if not isinstance(selector, dict):
        return False
    if not set(selector) <= {"matchLabels", "matchExpressions"}:
        selector = {"matchLabels": selector}  # a Service's spec.selector
    if not all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values", [])
        ok = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def markdown_anchors(path):
    """The anchors GitHub gives the headings of a Markdown file."""
    with open(path) as f:
        headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", f.read(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def list_labels(clause):
    return {label.strip() for label in clause.split(",") if label.strip()}


def install_overlay(directory, prefix, keep_dashboard):
    """Writes an overlay as deploy/README.md ("Several installs") describes one, in namespace
    "replication": namePrefix PREFIX, instance name PREFIX + "archie"; all but the first
    install of a Grafana delete the dashboard. Returns the instance name."""
    instance = prefix + "archie"
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": "replication", "namePrefix": prefix,
        "resources": [os.path.relpath(BASE, directory)],
        "components": [os.path.relpath(os.path.join(DEPLOY, "components", c), directory) for c in ("keda", "monitoring")],
        "labels": [{"pairs": {INSTANCE: instance}, "includeSelectors": True}],
    }
    if not keep_dashboard:
        kustomization["patches"] = [{"patch": yaml.safe_dump({
            "$patch": "delete", "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "archie-grafana-dashboard"}})}]
    os.makedirs(directory)
    with open(os.path.join(directory, "kustomization.yaml"), "w") as f:
        yaml.safe_dump(kustomization, f)
    return instance


@unittest.skipIf(yaml is None, "PyYAML missing")
class SeveralInstallsTest(unittest.TestCase):
    """Two installs side by side in one namespace, rendered by kubectl's kustomize from two
    overlays (namePrefix blue- and green-, instance names blue-archie and green-archie): no
    selector of one may select the other's pods, the alerts and the dashboard must tell them
    apart, and the KEDA and alert fields a platform team expects must be there."""

    @classmethod
    def setUpClass(cls):
        cls.installs = {}
        with tempfile.TemporaryDirectory() as tmp:
            for prefix, keep_dashboard in (("blue-", True), ("green-", False)):
                instance = install_overlay(os.path.join(tmp, prefix.rstrip("-")), prefix, keep_dashboard)
                cls.installs[instance] = kustomize(os.path.join(tmp, prefix.rstrip("-")))

    def pairs(self):
        """(mine, other, my objects, the other's objects) both ways round."""
        (a, objects_a), (b, objects_b) = self.installs.items()
        return [(a, b, objects_a, objects_b), (b, a, objects_b, objects_a)]

    def test_the_installs_share_no_object_name(self):
        names = [{(o["kind"], o["metadata"]["name"]) for o in objects} for objects in self.installs.values()]
        self.assertEqual(names[0] & names[1], set())

    def test_every_object_carries_the_recommended_labels(self):
        version = project_version()
        with open(os.path.join(BASE, "kustomization.yaml")) as f:
            (image,) = yaml.safe_load(f)["images"]
        self.assertEqual(image["newTag"], version, "the image tag is the release meson.build declares")
        for instance, objects in self.installs.items():
            for o in objects:
                with self.subTest(instance=instance, kind=o["kind"], name=o["metadata"]["name"]):
                    labels = o["metadata"].get("labels", {})
                    self.assertEqual(labels.get("app.kubernetes.io/name"), "archie")
                    self.assertEqual(labels.get(INSTANCE), instance)
                    self.assertEqual(labels.get("app.kubernetes.io/version"), version)
                    self.assertEqual(labels.get("app.kubernetes.io/managed-by"), "kustomize")
                    self.assertEqual(labels.get("app.kubernetes.io/part-of"), "archie")
            pod = by_kind(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
            self.assertEqual(pod.get(INSTANCE), instance)

    def test_no_selector_of_one_install_selects_the_other_installs_pods(self):
        for mine, other, objects, others in self.pairs():
            my_pods = by_kind(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
            their_pods = by_kind(others, "Deployment")["spec"]["template"]["metadata"]["labels"]
            deployment = by_kind(objects, "Deployment")
            selectors = {
                "Deployment": deployment["spec"]["selector"],
                "Deployment spread constraint": deployment["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["labelSelector"],
                "PodDisruptionBudget": by_kind(objects, "PodDisruptionBudget")["spec"]["selector"],
                "Service": by_kind(objects, "Service")["spec"]["selector"],
                "NetworkPolicy": by_kind(objects, "NetworkPolicy")["spec"]["podSelector"],
            }
            for what, selector in selectors.items():
                with self.subTest(install=mine, selector=what):
                    self.assertTrue(selects(selector, my_pods), f"{selector} misses its own pods {my_pods}")
                    self.assertFalse(selects(selector, their_pods), f"{selector} selects {other}'s pods {their_pods}")
            # The ServiceMonitor selects Services (whose endpoints are the pods).
            monitor = by_kind(objects, "ServiceMonitor")["spec"]["selector"]
            with self.subTest(install=mine, selector="ServiceMonitor"):
                self.assertTrue(selects(monitor, by_kind(objects, "Service")["metadata"]["labels"]))
                self.assertFalse(selects(monitor, by_kind(others, "Service")["metadata"]["labels"]),
                                 f"{mine}'s ServiceMonitor scrapes {other}'s pods")
            with self.subTest(install=mine, selector="ScaledObject"):
                target = by_kind(objects, "ScaledObject")["spec"]["scaleTargetRef"]["name"]
                self.assertEqual(target, deployment["metadata"]["name"])
                self.assertNotEqual(target, by_kind(others, "Deployment")["metadata"]["name"])

    def test_network_policy_peers_keep_their_own_selectors(self):
        # kustomize's includeSelectors writes an overlay's labels into every podSelector of a
        # NetworkPolicy, peers included; the DNS peer must still select the DNS pods.
        for instance, objects in self.installs.items():
            with self.subTest(instance=instance):
                (dns,) = [rule for rule in by_kind(objects, "NetworkPolicy")["spec"]["egress"]
                          if {"port": 53, "protocol": "UDP"} in rule["ports"]]
                (peer,) = dns["to"]
                self.assertTrue(selects(peer["podSelector"], {"k8s-app": "kube-dns"}), peer)
                self.assertTrue(selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": "kube-system"}))

    def test_each_install_is_its_own_prometheus_job(self):
        jobs = {}
        for instance, objects in self.installs.items():
            monitor = by_kind(objects, "ServiceMonitor")["spec"]
            self.assertEqual(monitor["jobLabel"], INSTANCE)
            jobs[instance] = by_kind(objects, "Service")["metadata"]["labels"][monitor["jobLabel"]]
        self.assertEqual(jobs, {instance: instance for instance in self.installs})

    def test_every_alert_keys_on_namespace_and_job(self):
        for instance, objects in self.installs.items():
            rules = [r for g in by_kind(objects, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
            self.assertTrue(rules)
            for rule in rules:
                expr = " ".join(rule["expr"].split())
                with self.subTest(instance=instance, alert=rule.get("alert")):
                    # A fixed job selects one install (or, shared, merges them); absent()
                    # keeps only its matchers' labels.
                    self.assertNotRegex(expr, r'\bjob\s*!?[=~]')
                    self.assertNotIn("absent(", expr)
                    for m in AGGREGATION.finditer(expr):
                        clause, labels = m.group(2), list_labels(m.group(3) or "")
                        self.assertIsNotNone(clause, f"{m.group(0)}: an aggregation over every install")
                        if clause == "by":
                            self.assertLessEqual({"namespace", "job"}, labels, m.group(0))
                        else:
                            self.assertFalse(labels & {"namespace", "job"}, m.group(0))
                    for m in VECTOR_MATCHING.finditer(expr):
                        labels = list_labels(m.group(2))
                        if m.group(1) == "on":
                            self.assertIn("namespace", labels, m.group(0))
                            self.assertTrue(labels & {"job", "instance", "pod"}, m.group(0))
                        else:
                            self.assertFalse(labels & {"namespace", "job"}, m.group(0))

    def test_down_and_restart_alerts_name_the_install(self):
        for instance, objects in self.installs.items():
            rules = {r["alert"]: r for g in by_kind(objects, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
            for name in ("ArchieDown", "ArchieRestartLoop"):
                with self.subTest(instance=instance, alert=name):
                    expr = " ".join(rules[name]["expr"].split())
                    outer = AGGREGATION.match(expr)
                    self.assertTrue(outer, f"{name} must aggregate by namespace and job: {expr}")
                    self.assertEqual(outer.group(2), "by")
                    self.assertLessEqual({"namespace", "job"}, list_labels(outer.group(3)))

    def test_one_dashboard_serves_both_installs_through_its_variables(self):
        dashboards = [json.loads(cm["data"]["archie-dashboard.json"])
                      for objects in self.installs.values() for cm in objects
                      if cm["kind"] == "ConfigMap" and "archie-dashboard.json" in cm.get("data", {})]
        uids = [d["uid"] for d in dashboards]
        self.assertTrue(uids)
        self.assertEqual(len(uids), len(set(uids)), "two dashboards with one uid clash in Grafana")
        for dashboard in dashboards:
            variables = {v["name"]: v for v in dashboard["templating"]["list"]}
            self.assertIn("namespace", variables)
            self.assertIn("job", variables)
            self.assertIn("archie_build_info", variables["job"]["definition"])
            self.assertEqual(variables["job"]["query"]["query"], variables["job"]["definition"])
            for panel in dashboard["panels"]:
                for target in panel.get("targets", []):
                    for selector in re.findall(r"\{[^}]*\}", target["expr"]):
                        with self.subTest(panel=panel["title"], selector=selector):
                            self.assertIn('job=~"$job"', selector)
                            self.assertIn('namespace=~"$namespace"', selector)

    def test_keda_falls_back_and_activates_from_zero_at_the_first_event(self):
        with open(BUNDLE_TOML, "rb") as f:
            concurrency = tomllib.load(f)["worker"]["concurrency"]
        for instance, objects in self.installs.items():
            with self.subTest(instance=instance):
                spec = by_kind(objects, "ScaledObject")["spec"]
                self.assertIn("fallback", spec, "without it KEDA freezes the count while it cannot read the lag")
                fallback = spec["fallback"]
                self.assertGreaterEqual(fallback["failureThreshold"], 1)
                self.assertGreaterEqual(fallback["replicas"], spec["minReplicaCount"])
                self.assertLessEqual(fallback["replicas"], spec["maxReplicaCount"])
                (trigger,) = spec["triggers"]
                meta = trigger["metadata"]
                # Any waiting event must wake a Deployment scaled to zero.
                self.assertEqual(meta["activationLagThreshold"], "0")
                self.assertGreaterEqual(int(meta["lagThreshold"]), concurrency)
                self.assertIn(meta["useHttps"], ("true", "false"))

    def test_the_trigger_authentication_example_follows_the_name_prefix(self):
        with tempfile.TemporaryDirectory() as tmp:
            overlay = os.path.join(tmp, "blue")
            install_overlay(overlay, "blue-", keep_dashboard=False)
            shutil.copy(os.path.join(DEPLOY, "components", "keda", "triggerauthentication.example.yaml"),
                        os.path.join(overlay, "triggerauthentication.yaml"))
            with open(os.path.join(overlay, "kustomization.yaml")) as f:
                kustomization = yaml.safe_load(f)
            kustomization["resources"].append("triggerauthentication.yaml")
            kustomization["patches"].append({"target": {"kind": "ScaledObject"}, "patch": yaml.safe_dump([
                {"op": "remove", "path": "/spec/triggers/0/metadata/natsServerMonitoringEndpoint"},
                {"op": "remove", "path": "/spec/triggers/0/metadata/account"},
                {"op": "add", "path": "/spec/triggers/0/authenticationRef", "value": {"name": "archie-keda-nats"}}])})
            with open(os.path.join(overlay, "kustomization.yaml"), "w") as f:
                yaml.safe_dump(kustomization, f)
            objects = kustomize(overlay)
        auth = by_kind(objects, "TriggerAuthentication")
        self.assertEqual(auth["metadata"]["name"], "blue-archie-keda-nats")
        (trigger,) = by_kind(objects, "ScaledObject")["spec"]["triggers"]
        self.assertEqual(trigger["authenticationRef"]["name"], auth["metadata"]["name"])
        self.assertEqual({r["parameter"] for r in auth["spec"]["secretTargetRef"]},
                         {"natsServerMonitoringEndpoint", "account"})

    def test_every_alert_links_its_runbook_section(self):
        anchors = markdown_anchors(README)
        for instance, objects in self.installs.items():
            for group in by_kind(objects, "PrometheusRule")["spec"]["groups"]:
                for rule in group["rules"]:
                    with self.subTest(instance=instance, alert=rule["alert"]):
                        notes = rule["annotations"]
                        self.assertNotIn("runbook", notes, "the conventional annotation is runbook_url")
                        url = urllib.parse.urlsplit(notes.get("runbook_url", ""))
                        self.assertEqual(url.scheme, "https")
                        self.assertTrue(url.netloc)
                        self.assertTrue(url.path.endswith("/deploy/README.md"), url.path)
                        self.assertEqual(url.fragment, rule["alert"].lower())
                        self.assertIn(url.fragment, anchors, "no such heading in deploy/README.md")
                        self.assertTrue(notes.get("description"))

    def test_readme_shows_how_an_overlay_names_its_install(self):
        with open(README) as f:
            text = f.read()
        section = text[text.index("## Several installs"):]
        section = section[:section.index("\n## ", 1)]
        (block,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
        overlay = yaml.safe_load(block)
        prefix = overlay["namePrefix"]
        # The overlay this test renders, as the README tells a user to write it.
        self.assertEqual(overlay["labels"], [{"pairs": {INSTANCE: prefix + "archie"}, "includeSelectors": True}])
        (patch,) = overlay["patches"]
        self.assertEqual(yaml.safe_load(patch["patch"]), {
            "$patch": "delete", "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "archie-grafana-dashboard"}})


K8S_SCHEMAS = os.path.join(REPO, "tests", "k8s")


def schema_check(objects):
    """tests/k8s/validate.mjs on objects: one {kind, name, known, errors, unknown} per object."""
    node = shutil.which("node")
    if not node:
        raise AssertionError("node not found (scripts/install-deps node installs it)")
    if not os.path.isdir(os.path.join(K8S_SCHEMAS, "node_modules", "kubernetes-models")):
        raise AssertionError("tests/k8s/node_modules missing: run scripts/install-deps node")
    r = subprocess.run([node, os.path.join(K8S_SCHEMAS, "validate.mjs")], input=json.dumps(objects),
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"validate.mjs failed: {r.stderr}")
    return json.loads(r.stdout)


@unittest.skipIf(yaml is None, "PyYAML missing")
class SchemaTest(unittest.TestCase):
    """Every rendered object against the real schemas from npm (kubernetes-models,
    @kubernetes-models/keda, @kubernetes-models/prometheus-operator), unknown fields rejected."""

    def assert_valid(self, objects, where):
        for result in schema_check(objects):
            with self.subTest(where=where, kind=result["kind"], name=result["name"]):
                self.assertTrue(result["known"], "no schema for this apiVersion/kind")
                self.assertEqual(result["errors"], [])
                self.assertEqual(result["unknown"], [])

    def test_base_bundle_and_name_prefix_overlay_match_their_schemas(self):
        self.assert_valid(kustomize(BASE), "base")
        self.assert_valid(kustomize(DEPLOY), "complete bundle")
        with tempfile.TemporaryDirectory() as overlay:
            with open(os.path.join(overlay, "kustomization.yaml"), "w") as f:
                yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                                "namespace": "replication", "namePrefix": "blue-",
                                "resources": [os.path.relpath(BASE, overlay)],
                                "components": [os.path.relpath(os.path.join(DEPLOY, "components", c), overlay)
                                               for c in ("keda", "monitoring")]}, f)
            self.assert_valid(kustomize(overlay), "namePrefix overlay")

    def test_two_installs_and_the_trigger_authentication_example_match_their_schemas(self):
        with tempfile.TemporaryDirectory() as tmp:
            for prefix, keep_dashboard in (("blue-", True), ("green-", False)):
                overlay = os.path.join(tmp, prefix.rstrip("-"))
                install_overlay(overlay, prefix, keep_dashboard)
                self.assert_valid(kustomize(overlay), prefix + "archie")
        with open(os.path.join(DEPLOY, "components", "keda", "triggerauthentication.example.yaml")) as f:
            self.assert_valid([yaml.safe_load(f)], "triggerauthentication.example.yaml")

    def test_the_example_secret_matches_its_schema(self):
        self.assert_valid([load_yaml("secret.example.yaml")], "secret.example.yaml")

    def test_a_misspelt_field_a_wrong_type_and_an_unknown_kind_are_caught(self):
        objects = kustomize(DEPLOY)
        scaled = json.loads(json.dumps(by_kind(objects, "ScaledObject")))
        scaled["spec"]["scaleTargetRef"]["nmae"] = scaled["spec"]["scaleTargetRef"].pop("name")
        monitor = json.loads(json.dumps(by_kind(objects, "ServiceMonitor")))
        monitor["spec"]["endpoints"][0]["intervall"] = "30s"
        deployment = json.loads(json.dumps(by_kind(objects, "Deployment")))
        deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "45"
        unknown_kind = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
        scaled_r, monitor_r, deployment_r, widget_r = schema_check([scaled, monitor, deployment, unknown_kind])
        self.assertIn("/spec/scaleTargetRef/nmae", scaled_r["unknown"])
        self.assertTrue(scaled_r["errors"], "the required scaleTargetRef.name is missing")
        self.assertEqual(monitor_r["unknown"], ["/spec/endpoints/0/intervall"])
        self.assertTrue(any("terminationGracePeriodSeconds" in e for e in deployment_r["errors"]), deployment_r)
        self.assertFalse(widget_r["known"])


@unittest.skipIf(yaml is None, "PyYAML missing")
class DashboardTest(unittest.TestCase):
    def panels(self):
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        return [p for p in dashboard["panels"] if p["type"] != "row"]

    def queries(self):
        """(panel title, PromQL) with Grafana's variables replaced as Grafana would."""
        for panel in self.panels():
            for target in panel["targets"]:
                expr = (target["expr"].replace("$__rate_interval", "5m").replace("$namespace", ".*")
                        .replace("$job", ".*"))
                yield panel["title"], expr

    def test_every_panel_has_a_query(self):
        for panel in self.panels():
            with self.subTest(panel=panel["title"]):
                self.assertTrue(panel["targets"])
                self.assertTrue(all(t["expr"].strip() for t in panel["targets"]))

    def test_every_panel_query_is_valid_promql(self):
        # promtool parses every expression of a rule file: each query becomes a recording rule.
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(self.queries())]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            json.dump(rules, f)  # JSON is YAML
            f.flush()
            r = subprocess.run([promtool(), "check", "rules", f.name], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_dashboard_and_alerts_use_only_metrics_archie_exports(self):
        exported = set()
        for root, _, files in os.walk(os.path.join(REPO, "src")):
            for name in files:
                if name.endswith(".cpp"):
                    with open(os.path.join(root, name)) as f:
                        exported |= set(re.findall(r'"(archie_[a-z0-9_]+)"', f.read()))
        with open(ALERTS) as f:
            exprs = [r["expr"] for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
        used = set(re.findall(r"\b(archie_[a-z0-9_]+)", " ".join(exprs + [e for _, e in self.queries()])))
        for metric in sorted(used):
            base = re.sub(r"_(bucket|count|sum)$", "", metric)
            with self.subTest(metric=metric):
                self.assertTrue(metric in exported or base in exported, f"{metric} is not registered in src/")


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
                    # `type` and the fleet budgets are documented for all stores, the rest per type.
                    common = ("type", "max_bandwidth", "max_requests_per_second", "max_transfers")
                    marker = "`[stores.NAME]`" if key in common else f'`type = "{table["type"]}"`'
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
