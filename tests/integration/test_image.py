"""The container image as an operator runs it: podman loads the OCI archive that
scripts/build-image wrote (ARCHIE_IMAGE, an index of linux/amd64 and linux/arm64), the image
runs archie as UID 65532 with no shell, `check-config` accepts the bundle's
deploy/base/archie.toml with the Secret mounted where the Deployment mounts it, each
platform's SBOM beside the archive (.PLATFORM.spdx.json) lists exactly that image's packages
and versions and archie's version as the labels and `archie --version` give it, and archie
inside the container replicates an object between two RGW endpoints of the test rig. The
arm64 image's archie, unpacked from the archive, runs under qemu-user with the image's own
loader and libraries: --version, check-config and a replication against the same rig.
Run by scripts/test-image (which builds the image first).
Servers: nats-server and Ceph RGW on 127.0.0.1 (the container shares the host's network)."""
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import unittest

import yaml

from testkit.config_builder import rgw_to_rgw_buckets, rgw_to_rgw_config
from testkit.events import EVENT_SUBJECT, publish_event
from testkit.nats_client import NatsClient
from testkit.net import free_port, http_get
from testkit.paths import REPO
from testkit.rgw_user import RgwUser
from testkit.rig import Rig
from testkit.waiting import wait_until

IMAGE_ARCHIVE = os.environ.get("ARCHIE_IMAGE")
PODMAN = shutil.which("podman") or "/usr/bin/podman"
QEMU_ARM64 = shutil.which("qemu-aarch64-static") or "/usr/bin/qemu-aarch64-static"
SECRET_MOUNT = "/var/run/secrets/archie"
CONFIG_MOUNT = "/etc/archie"
SRC_BUCKET, DST_BUCKET = "image-source", "image-replica"

store_dir = None
image = None
arm64 = None  # (config, root): the arm64 image, unpacked from the archive


class Podman:
    """podman with its own storage under a temp dir, configured as this VM needs it
    (../shared/TOOLCHAIN.md): runc (crun cannot handle the hybrid cgroup setup), cgroupfs,
    and explicit ulimits, which this VM refuses to raise even for root."""

    def __init__(self, root):
        self.base = [PODMAN, "--root", os.path.join(root, "storage"), "--runroot", os.path.join(root, "run"),
                     "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]

    def __call__(self, *args, timeout=120, check=True):
        r = subprocess.run(self.base + list(args), capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def run(self, *args, timeout=60, check=False):
        return self("run", "--rm", "--network", "host", "--ulimit", "nofile=1024:1024",
                    "--ulimit", "nproc=4096:4096", *args, timeout=timeout, check=check)


podman = None


def setUpModule():
    global store_dir, podman, image
    if not IMAGE_ARCHIVE:
        raise unittest.SkipTest("ARCHIE_IMAGE is not set: scripts/test-image builds the image and runs this test")
    if not os.path.exists(IMAGE_ARCHIVE):
        raise AssertionError(f"ARCHIE_IMAGE={IMAGE_ARCHIVE} does not exist")
    store_dir = tempfile.mkdtemp(prefix="archie-podman-")
    podman = Podman(store_dir)
    out = podman("load", "--input", IMAGE_ARCHIVE, timeout=300).stdout
    loaded = [line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Loaded image")]
    if len(loaded) != 1:
        raise AssertionError(f"podman load did not name one image: {out}")
    image = loaded[0]


def tearDownModule():
    if arm64:
        shutil.rmtree(arm64[1], ignore_errors=True)
    if podman:
        podman("rm", "--all", "--force", check=False)
        podman("rmi", "--all", "--force", check=False)
        podman("system", "reset", "--force", check=False, timeout=120)
    if store_dir:
        shutil.rmtree(store_dir, ignore_errors=True)


def readable_dir(prefix):
    """A temp dir the container's UID 65532 can read (mkdtemp makes them 0700)."""
    path = tempfile.mkdtemp(prefix=prefix)
    os.chmod(path, 0o755)
    return path


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)


def beside_archive(suffix):
    """A file scripts/build-image writes beside the archive: DIR/NAME.oci.tar -> DIR/NAME<suffix>."""
    stem = IMAGE_ARCHIVE[:-len(".oci.tar")] if IMAGE_ARCHIVE.endswith(".oci.tar") else IMAGE_ARCHIVE
    return stem + suffix


def platform_image(arch):
    """(image config, root directory) of the archive's linux/ARCH image: the index that
    index.json names, its ARCH manifest, and that manifest's one layer unpacked into a temp dir."""
    with tarfile.open(IMAGE_ARCHIVE) as archive:
        names = set(archive.getnames())

        def read(name):
            return archive.extractfile(name if name in names else "./" + name).read()

        def blob(digest):
            return read("blobs/" + digest.replace(":", "/"))

        (ref,) = json.loads(read("index.json"))["manifests"]
        index = json.loads(blob(ref["digest"]))
        (entry,) = [m for m in index["manifests"] if m["platform"] == {"architecture": arch, "os": "linux"}]
        manifest = json.loads(blob(entry["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        (layer,) = manifest["layers"]
        root = tempfile.mkdtemp(prefix=f"archie-image-{arch}-")
        with tarfile.open(fileobj=io.BytesIO(blob(layer["digest"]))) as files:
            files.extractall(root)
    return config, root


def arm64_image():
    global arm64
    if arm64 is None:
        arm64 = platform_image("arm64")
    return arm64


def run_arm64(*args, timeout=60, **kwargs):
    """The arm64 image's archie under qemu-user: its loader and libraries from the image's
    root (-L), nothing from the host; other absolute paths fall through to the host's files."""
    _, root = arm64_image()
    return subprocess.run([QEMU_ARM64, "-L", root, os.path.join(root, "usr/local/bin/archie"), *args],
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def assert_valid_and_redacted(test, r, secret_dir, secrets):
    """`check-config` accepted the bundle's config and showed its secrets as files, never their values."""
    test.assertEqual(r.returncode, 0, r.stderr)
    test.assertIn("is valid", r.stderr)
    test.assertIn(f"<redacted, file {secret_dir}/nats-password>", r.stdout)
    for value in secrets.values():
        test.assertNotIn(value, r.stdout + r.stderr)


def dpkg_status_packages(text):
    """(package, version) of a dpkg status file, as `dpkg-query -W` lists them (not-installed
    entries left out), sorted."""
    packages = []
    for paragraph in text.split("\n\n"):
        fields = dict(line.split(":", 1) for line in paragraph.splitlines() if line and line[0] not in " \t")
        fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
        if "package" in fields and not fields.get("status", "").endswith(" not-installed"):
            packages.append((fields["package"], fields["version"]))
    return sorted(packages)


class ImageTest(unittest.TestCase):
    def inspect(self):
        (info,) = json.loads(podman("image", "inspect", image).stdout)
        return info

    def test_version_matches_the_version_and_revision_labels(self):
        labels = self.inspect()["Config"]["Labels"]
        revision = labels["org.opencontainers.image.revision"]
        self.assertRegex(revision, r"^[0-9a-f]{40}(-dirty)?$|^unknown$")
        for args in (["version"], ["--version"], ["-V"]):
            r = podman.run(image, *args)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.startswith(f"archie {labels['org.opencontainers.image.version']} (commit "),
                            r.stdout)
            if revision != "unknown":
                self.assertIn(f"(commit {revision[:12]}, built ", r.stdout)

    def test_runs_as_65532_with_archie_as_entrypoint_and_no_shell(self):
        config = self.inspect()["Config"]
        self.assertEqual(config["User"], "65532:65532")
        self.assertEqual(config["Entrypoint"], ["/usr/local/bin/archie"])
        self.assertEqual(config["Cmd"], ["run", "--config", "/etc/archie/archie.toml"])
        for shell in ("/bin/sh", "/bin/bash", "/usr/bin/perl"):
            with self.subTest(shell=shell):
                r = podman.run("--entrypoint", shell, image, "-c", "true")
                self.assertNotEqual(r.returncode, 0, f"{shell} ran inside the image")

    def test_check_config_accepts_the_bundle_config_with_the_secret_mounted(self):
        with open(os.path.join(REPO, "deploy", "secret.example.yaml")) as f:
            secrets = yaml.safe_load(f)["stringData"]
        config_dir, secret_dir = readable_dir("archie-config-"), readable_dir("archie-secret-")
        try:
            shutil.copy(os.path.join(REPO, "deploy", "base", "archie.toml"), os.path.join(config_dir, "archie.toml"))
            os.chmod(os.path.join(config_dir, "archie.toml"), 0o644)
            for key, value in secrets.items():
                write(os.path.join(secret_dir, key), value + "\n")
            # Mounted read-only where deploy/base/deployment.yaml mounts them, on a read-only root.
            r = podman.run("--read-only", "-v", f"{config_dir}:{CONFIG_MOUNT}:ro",
                           "-v", f"{secret_dir}:{SECRET_MOUNT}:ro",
                           image, "check-config", "--config", f"{CONFIG_MOUNT}/archie.toml")
        finally:
            shutil.rmtree(config_dir, ignore_errors=True)
            shutil.rmtree(secret_dir, ignore_errors=True)
        assert_valid_and_redacted(self, r, SECRET_MOUNT, secrets)

    def test_check_config_without_a_config_exits_2_and_with_a_missing_file_exits_3(self):
        r = podman.run(image, "check-config")
        self.assertEqual(r.returncode, 2, r.stderr)
        r = podman.run(image, "check-config", "--config", "/etc/archie/archie.toml")
        self.assertEqual(r.returncode, 3, r.stderr)


class SbomChecks:
    """The SBOM that scripts/build-image writes beside the archive for one platform
    (scripts/sbom.py) against that platform's .packages file and what its image holds and
    prints. A subclass sets `arch` and, in load_image(), cls.status and cls.binary (paths of the
    image's dpkg database and archie), cls.image_labels and cls.version_output."""
    arch = None

    @classmethod
    def setUpClass(cls):
        with open(beside_archive(f".{cls.arch}.spdx.json")) as f:
            cls.sbom = json.load(f)
        (cls.archie,) = [p for p in cls.sbom["packages"] if p.get("primaryPackagePurpose") == "APPLICATION"]
        cls.debs = sorted((p["name"], p["versionInfo"]) for p in cls.sbom["packages"] if p is not cls.archie)
        cls.load_image()

    def labels(self):
        return self.image_labels

    def test_is_spdx_2_3_and_every_package_has_a_purl_and_a_declared_license(self):
        self.assertEqual(self.sbom["spdxVersion"], "SPDX-2.3")
        for p in self.sbom["packages"]:
            if p is self.archie:
                continue
            with self.subTest(package=p["name"]):
                (ref,) = p["externalRefs"]
                self.assertTrue(ref["referenceLocator"].startswith("pkg:deb/debian/"), ref)
                self.assertTrue(p["licenseDeclared"])

    def test_packages_are_of_this_platform(self):
        for p in self.sbom["packages"]:
            if p is self.archie:
                continue
            with self.subTest(package=p["name"]):
                (ref,) = p["externalRefs"]
                self.assertRegex(ref["referenceLocator"], rf"[?&]arch=({self.arch}|all)(&|$)")

    def test_lists_exactly_the_packages_and_versions_of_the_packages_file(self):
        with open(beside_archive(f".{self.arch}.packages")) as f:
            listed = sorted(tuple(line.split(" ", 1)) for line in f.read().splitlines() if line)
        self.assertEqual(self.debs, listed)

    def test_lists_exactly_the_packages_and_versions_of_the_images_dpkg_database(self):
        with open(self.status, encoding="utf-8", errors="replace") as f:
            self.assertEqual(self.debs, dpkg_status_packages(f.read()))

    def test_archie_version_agrees_with_the_labels_and_archie_version(self):
        labels = self.labels()
        printed = re.match(r"archie (\S+) \(commit ", self.version_output)
        self.assertIsNotNone(printed, self.version_output)
        self.assertEqual(self.archie["versionInfo"], labels["org.opencontainers.image.version"])
        self.assertEqual(self.archie["versionInfo"], printed.group(1))
        self.assertEqual(self.archie["licenseDeclared"], labels["org.opencontainers.image.licenses"])
        self.assertEqual(self.sbom["creationInfo"]["created"], labels["org.opencontainers.image.created"])
        self.assertIn(labels["org.opencontainers.image.revision"], self.archie["sourceInfo"])
        self.assertTrue(self.sbom["documentNamespace"].endswith(
            f"-{labels['org.opencontainers.image.version']}-{labels['org.opencontainers.image.revision']}"))

    def test_archie_checksum_is_the_images_binary(self):
        with open(self.binary, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        self.assertEqual(self.archie["checksums"], [{"algorithm": "SHA256", "checksumValue": digest}])


class Amd64SbomTest(SbomChecks, unittest.TestCase):
    """The image podman loaded (the host's platform, amd64)."""
    arch = "amd64"

    @classmethod
    def load_image(cls):
        # The image's own dpkg database and binary, copied out of a container that never starts.
        cls.files = tempfile.mkdtemp(prefix="archie-image-files-")
        container = podman("create", image).stdout.strip()
        try:
            for src in ("/var/lib/dpkg/status", "/usr/local/bin/archie"):
                podman("cp", f"{container}:{src}", os.path.join(cls.files, os.path.basename(src)))
        finally:
            podman("rm", "--force", container, check=False)
        cls.status, cls.binary = os.path.join(cls.files, "status"), os.path.join(cls.files, "archie")
        (info,) = json.loads(podman("image", "inspect", image).stdout)
        cls.image_labels = info["Config"]["Labels"]
        r = podman.run(image, "--version")
        assert r.returncode == 0, r.stderr
        cls.version_output = r.stdout

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.files, ignore_errors=True)


class Arm64SbomTest(SbomChecks, unittest.TestCase):
    """The arm64 image, unpacked from the archive; its archie runs under qemu-user."""
    arch = "arm64"

    @classmethod
    def load_image(cls):
        config, root = arm64_image()
        cls.status = os.path.join(root, "var/lib/dpkg/status")
        cls.binary = os.path.join(root, "usr/local/bin/archie")
        cls.image_labels = config["config"]["Labels"]
        r = run_arm64("--version")
        assert r.returncode == 0, r.stderr
        cls.version_output = r.stdout


class Arm64ImageTest(unittest.TestCase):
    """What the arm64 image holds and does, under qemu-user (no arm64 machine needed)."""

    def test_is_an_aarch64_program_with_the_same_entrypoint_and_user(self):
        config, root = arm64_image()
        with open(os.path.join(root, "usr/local/bin/archie"), "rb") as f:
            header = f.read(20)
        self.assertEqual(header[:4], b"\x7fELF")
        self.assertEqual(int.from_bytes(header[18:20], "little"), 183, "e_machine is not EM_AARCH64")
        self.assertEqual((config["os"], config["architecture"]), ("linux", "arm64"))
        self.assertEqual(config["config"]["User"], "65532:65532")
        self.assertEqual(config["config"]["Entrypoint"], ["/usr/local/bin/archie"])
        for shell in ("bin/sh", "bin/bash", "usr/bin/sh", "usr/bin/perl"):
            self.assertFalse(os.path.lexists(os.path.join(root, shell)), f"/{shell} is in the arm64 image")

    def test_check_config_accepts_the_bundle_config_with_its_secrets(self):
        with open(os.path.join(REPO, "deploy", "secret.example.yaml")) as f:
            secrets = yaml.safe_load(f)["stringData"]
        # The bundle's config with the secret mount moved to a temp dir of the host: the image's
        # /var/run is a link to /run, which qemu-user would resolve on the host anyway.
        work = tempfile.mkdtemp(prefix="archie-arm64-config-")
        try:
            secret_dir = os.path.join(work, "secrets")
            os.mkdir(secret_dir)
            for key, value in secrets.items():
                write(os.path.join(secret_dir, key), value + "\n")
            with open(os.path.join(REPO, "deploy", "base", "archie.toml")) as f:
                config = f.read()
            self.assertIn(SECRET_MOUNT + "/", config)
            write(os.path.join(work, "archie.toml"), config.replace(SECRET_MOUNT + "/", secret_dir + "/"))
            r = run_arm64("check-config", "--config", os.path.join(work, "archie.toml"))
            missing = run_arm64("check-config", "--config", os.path.join(work, "absent.toml"))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        assert_valid_and_redacted(self, r, secret_dir, secrets)
        self.assertEqual(missing.returncode, 3, missing.stderr)


class ImageReplicationTest(unittest.TestCase):
    """archie in the container, the rig on the host's loopback (--network host)."""

    @classmethod
    def setUpClass(cls):
        cls.rig = Rig(nats=True, ceph=True, num_rgw=2)
        cls.rig.start()
        rgw_to_rgw_buckets(cls.rig, SRC_BUCKET, DST_BUCKET)
        cls.port = free_port()
        cls.config_dir = readable_dir("archie-image-config-")
        write(os.path.join(cls.config_dir, "archie.toml"),
              rgw_to_rgw_config(cls.rig, cls.port, SRC_BUCKET, DST_BUCKET))
        cls.container = None

    @classmethod
    def tearDownClass(cls):
        if cls.container:
            podman("rm", "--force", cls.container, check=False)
        shutil.rmtree(cls.config_dir, ignore_errors=True)
        cls.rig.close()

    def put_and_publish(self, key, size):
        """`size` random bytes at the source under `key` and their event; (the bytes, a function
        returning the replica's bytes once it exists)."""
        body = os.urandom(size)
        etag = RgwUser(self.rig, "archie", 0).put(SRC_BUCKET, key, body)  # asserts 200
        with NatsClient([self.rig.nats.url]) as nc:
            publish_event(nc, "s3:ObjectCreated:Put", SRC_BUCKET, key, subject=EVENT_SUBJECT, size=len(body), etag=etag)

        def replica():
            status, _, data = RgwUser(self.rig, "other", 1).get(DST_BUCKET, key)
            return data if status == 200 else None
        return body, replica

    def wait_for(self, pred, timeout, what):
        def container_log():
            logs = podman("logs", self.container, check=False).stderr[-3000:] if self.container else ""
            return f"container log tail:\n{logs}"
        return wait_until(pred, timeout, what, interval=0.2, context=container_log)

    def test_archie_in_the_container_replicates_an_object_and_drains_on_sigterm(self):
        # The image's own CMD (run --config /etc/archie/archie.toml) on a read-only root.
        r = podman("run", "--detach", "--network", "host", "--read-only", "--ulimit", "nofile=1024:1024",
                   "--ulimit", "nproc=4096:4096", "-v", f"{self.config_dir}:{CONFIG_MOUNT}:ro", image)
        type(self).container = r.stdout.strip()
        ready = f"http://127.0.0.1:{self.port}/ready"
        self.wait_for(lambda: http_get(ready, timeout=2)[0] == 200 if self.container_running() else None, 90,
                      "/ready to answer 200")

        body, replica = self.put_and_publish("in/image.bin", 3 * 1024 * 1024 + 17)
        self.assertEqual(self.wait_for(replica, 60, "the replica in the destination bucket"), body)
        _, _, metrics = http_get(f"http://127.0.0.1:{self.port}/metrics")
        self.assertRegex(metrics.decode(), r'archie_queue_outcomes_total\{[^}]*outcome="ack"[^}]*\} 1\b')
        # The consumer's backlog, polled from JetStream by archie itself (backlog_monitor).
        for gauge in ("archie_consumer_pending_messages", "archie_consumer_ack_pending_messages",
                      "archie_consumer_oldest_unacked_age_seconds"):
            self.assertRegex(metrics.decode(), gauge + r'\{[^}]*consumer="archie"[^}]*\} \d')

        # SIGTERM (what the kubelet sends) drains and exits 0 well within the grace period.
        r = podman("stop", "--time", "30", self.container, timeout=60)
        state = json.loads(podman("inspect", self.container).stdout)[0]["State"]
        self.assertEqual(state["ExitCode"], 0, podman("logs", self.container, check=False).stderr[-3000:])
        logs = podman("logs", self.container).stderr
        self.assertIn('"archie stopped"', logs)
        for user in ("archie", "other"):
            self.assertNotIn(self.rig.ceph.users[user][1], logs)

    def test_the_arm64_archie_under_qemu_replicates_an_object_and_drains_on_sigterm(self):
        # The same config and rig as the container; the image's arm64 loader and libraries.
        _, root = arm64_image()
        log_path = os.path.join(self.config_dir, "arm64.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen([QEMU_ARM64, "-L", root, os.path.join(root, "usr/local/bin/archie"),
                                     "run", "--config", os.path.join(self.config_dir, "archie.toml")],
                                    stdout=log, stderr=subprocess.STDOUT)
        try:
            def log_tail():
                with open(log_path) as f:
                    return f"arm64 archie's log tail:\n{f.read()[-3000:]}"

            def ready():
                if proc.poll() is not None:
                    self.fail(f"the arm64 archie exited ({proc.returncode}): {log_tail()}")
                return http_get(f"http://127.0.0.1:{self.port}/ready", timeout=2)[0] == 200

            wait_until(ready, 120, "the arm64 archie's /ready to answer 200", interval=0.5, retry_on=(OSError,),
                       context=log_tail)
            body, replica = self.put_and_publish("in/arm64.bin", 2 * 1024 * 1024 + 5)
            self.assertEqual(wait_until(replica, 90, "the arm64 archie's replica", interval=0.5, context=log_tail), body)
            proc.terminate()
            self.assertEqual(proc.wait(timeout=60), 0, log_tail())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        with open(log_path) as f:
            logs = f.read()
        self.assertIn('"archie stopped"', logs)
        for user in ("archie", "other"):
            self.assertNotIn(self.rig.ceph.users[user][1], logs)

    def container_running(self):
        r = podman("inspect", "--format", "{{.State.Running}}", self.container, check=False)
        if r.stdout.strip() != "true":
            self.fail(f"the container exited: {podman('logs', self.container, check=False).stderr[-3000:]}")
        return True


if __name__ == "__main__":
    unittest.main()
