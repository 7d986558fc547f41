"""End to end: archie replicating to an RGW destination with temporary credentials that
expire while it runs, and to one whose keys are a mounted Secret rotated under it.

Servers: nats-server, Ceph (mon, osd, two radosgw), the STS test server
(testkit/aws_credential_servers.py).

The STS test server hands out a fresh RGW key pair (plus a session token, which RGW's
signature check covers) for every AssumeRoleWithWebIdentity call, and deletes the key from RGW
the moment it expires: a request signed with expired credentials is refused
(InvalidAccessKeyId), so "no failed request" really means archie always had fresh ones.
The lifetime is 10 s rather than the 60 s of the issue (ARCHIE_TEST_CREDENTIAL_LIFETIME
overrides it): the test sees three expiries in 30 s instead of three minutes, and the schedule
(refresh a quarter of the lifetime ahead, plus jitter) is the same code path at any lifetime."""
import json
import os
import shutil
import tempfile
import time
import unittest
import urllib.request

from testkit.archie_process import ArchieProcess
from testkit.aws_credential_servers import RgwKeyIssuer, StsServer
from testkit.config_builder import archie_config, queue_section, rgw_store, route
from testkit.events import minio_event
from testkit.nats_client import NatsClient
from testkit.net import free_port, http_get
from testkit.rig import Rig

SUBJECT = "minio.events"
LIFETIME = int(os.environ.get("ARCHIE_TEST_CREDENTIAL_LIFETIME", "10"))
EXPIRIES = 3
ROLE_ARN = "arn:aws:iam::123456789012:role/archie-replicator"


def metric_samples(port, name):
    """{labels-string: value} of every sample of `name` on archie's /metrics."""
    _, _, body = http_get(f"http://127.0.0.1:{port}/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line.rpartition(" ")
            out[labels[len(name):]] = float(value)
    return out


class MountedSecret:
    """A directory laid out as the kubelet mounts a Secret, updated by swapping ..data."""

    def __init__(self, root):
        self.root = root
        self.version = 0
        os.makedirs(root, exist_ok=True)

    def publish(self, **files):
        self.version += 1
        ts = os.path.join(self.root, "..2026_11_29_%d" % self.version)
        os.mkdir(ts)
        for name, text in files.items():
            with open(os.path.join(ts, name), "w") as f:
                f.write(text + "\n")
        tmp = os.path.join(self.root, "..data_tmp")
        os.symlink(os.path.basename(ts), tmp)
        os.replace(tmp, os.path.join(self.root, "..data"))
        for name in files:
            link = os.path.join(self.root, name)
            if not os.path.islink(link):
                os.symlink(os.path.join("..data", name), link)

    def path(self, name):
        return os.path.join(self.root, name)


class CloudIdentityReplication(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rig = Rig(nats=True, ceph=True)
        cls.rig.start()
        cls.dir = tempfile.mkdtemp(prefix="archie-identity-")
        ceph = cls.rig.ceph
        for b in ("sts-src", "rotate-src"):
            ceph.make_bucket(b, user="archie", endpoint_index=0)
        for b in ("sts-dst", "rotate-dst"):
            ceph.make_bucket(b, user="other", endpoint_index=1)
        cls.issuer = RgwKeyIssuer(ceph, "other", lifetime=LIFETIME)
        cls.sts = StsServer(cls.issuer).start()
        cls.token_file = os.path.join(cls.dir, "token")
        with open(cls.token_file, "w") as f:
            f.write("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YXJjaGllOmFyY2hpZSJ9.c2ln")
        # The rotated store's keys: a second key pair of "other", mounted as a Secret.
        cls.secret = MountedSecret(os.path.join(cls.dir, "dst-keys"))
        cls.first_keys = ("ROTATEFIRST000000001", "rotate-first-secret-0123456789")
        ceph.radosgw_admin("key", "create", "--uid", "other", "--key-type", "s3",
                           "--access-key", cls.first_keys[0], "--secret", cls.first_keys[1])
        cls.secret.publish(access_key_id=cls.first_keys[0], secret_access_key=cls.first_keys[1])
        cls.http_port = free_port()
        config = archie_config(
            [cls.rig.nats.url], http_port=cls.http_port, concurrency=4, shutdown_wait="5s",
            queue=queue_section([SUBJECT]), replication={"buffer_budget_mib": 32},
            stores={"src": rgw_store(cls.rig, "archie", 0),
                    "irsa": {"type": "s3", "endpoint": ceph.endpoints[1], "credentials": "web_identity",
                             "sts_endpoint": cls.sts.url},
                    "rotated": {"type": "s3", "endpoint": ceph.endpoints[1],
                                "access_key_id_file": cls.secret.path("access_key_id"),
                                "secret_access_key_file": cls.secret.path("secret_access_key")}},
            routes=[route("src", "sts-src", [("irsa", "sts-dst")]),
                    route("src", "rotate-src", [("rotated", "rotate-dst")])])
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ROLE_ARN=ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE=cls.token_file,
                   AWS_ROLE_SESSION_NAME="archie-e2e", AWS_EC2_METADATA_DISABLED="true")
        cls.archie = ArchieProcess(config, env=env)
        cls.archie.wait_for_log("consuming", timeout=60)
        cls.nc = NatsClient([cls.rig.nats.url])
        cls.nc.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.nc.__exit__(None, None, None)
        cls.archie.stop()
        cls.sts.stop()
        cls.rig.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def put_and_publish(self, bucket, key):
        body = os.urandom(64 * 1024)
        status, headers, _ = self.rig.ceph.s3("PUT", f"/{bucket}/{key}", body=body)
        self.assertEqual(status, 200)
        self.nc.js_publish(SUBJECT, minio_event("s3:ObjectCreated:Put", bucket, key, size=len(body),
                                                etag=headers["etag"].strip('"')))
        return body

    def wait_replicated(self, bucket, key, body, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, _, got = self.rig.ceph.s3("GET", f"/{bucket}/{key}", user="other", endpoint_index=1)
            if status == 200 and got == body:
                return
            time.sleep(0.2)
        self.fail(f"{bucket}/{key} not replicated within {timeout}s")

    def failed_requests(self, store):
        """Requests to `store` that failed: no answer, or a 4xx/5xx other than the 404 of a
        HEAD that finds no replica yet."""
        samples = metric_samples(self.http_port, "archie_store_request_duration_seconds_count")
        failed = {}
        for labels, count in samples.items():
            status = labels.split('status="', 1)[1].split('"', 1)[0]
            if f'store="{store}"' in labels and (status == "0" or (int(status) >= 400 and status != "404")):
                failed[labels] = count
        return failed

    def outcomes(self):
        return metric_samples(self.http_port, "archie_queue_outcomes_total")

    def test_1_replication_with_web_identity_credentials_survives_several_expiries(self):
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < EXPIRIES * LIFETIME + 2:
            key = f"irsa/object-{n:04d}"
            body = self.put_and_publish("sts-src", key)
            self.wait_replicated("sts-dst", key, body)
            n += 1
            time.sleep(1)
        # Every expired key was really deleted from RGW while archie kept replicating.
        self.assertGreaterEqual(len(self.issuer.issued), EXPIRIES)
        self.assertGreaterEqual(len(self.issuer.revoked), EXPIRIES - 1)
        self.assertEqual(self.failed_requests("irsa"), {})
        outcomes = self.outcomes()
        self.assertTrue(all('outcome="ack"' in k for k, v in outcomes.items() if v > 0), outcomes)
        self.assertFalse([e for e in self.archie.logs() if e.get("level") in ("warn", "error")
                          and e.get("store") == "irsa"])
        # The web identity token was sent to STS; no token, key or secret reached the log.
        log_text = json.dumps(self.archie.logs())
        for i in self.issuer.issued:
            self.assertNotIn(i.secret_access_key, log_text)
            self.assertNotIn(i.session_token, log_text)
        print(f"\n{n} objects over {time.monotonic() - started:.0f}s, {len(self.issuer.issued)} credentials "
              f"issued, {len(self.issuer.revoked)} expired and revoked, failed requests: 0")

    def test_3_credentials_revoked_before_expiry_are_replaced_after_one_refusal(self):
        # Wait until archie holds credentials it will not refresh on its own for a while (it
        # refreshes them 1 to 1.5 quarters of their lifetime before expiry), then revoke them.
        keep_for = LIFETIME * 0.375 + 4
        deadline = time.monotonic() + LIFETIME
        while time.monotonic() < deadline:
            current = self.issuer.issued[-1]
            if current.expiration - time.time() > keep_for and current not in self.issuer.revoked:
                break
            body = self.put_and_publish("sts-src", "irsa/warm")
            self.wait_replicated("sts-dst", "irsa/warm", body)
            time.sleep(0.5)
        issued_before = len(self.issuer.issued)
        self.issuer.revoke(current)
        body = self.put_and_publish("sts-src", "irsa/after-revoke")
        self.wait_replicated("sts-dst", "irsa/after-revoke", body)
        # The first request after the revocation is a HEAD of the replica: a bare 403 without
        # an error code, which archie also takes as a possible refusal of its credentials.
        refusal = self.archie.wait_for_log("S3 credentials refused; fetching fresh ones and retrying once",
                                           timeout=5, store="irsa")
        self.assertIn(refusal["code"], ("HTTP403", "InvalidAccessKeyId"))
        self.assertGreater(len(self.issuer.issued), issued_before)
        # Not even a retry of the message was needed: the event was done at its first delivery.
        done = self.archie.wait_for_log("replicated", timeout=5, key="irsa/after-revoke")
        self.assertEqual(done["deliveries"], 1)
        outcomes = self.outcomes()
        self.assertTrue(all('outcome="ack"' in k for k, v in outcomes.items() if v > 0), outcomes)

    def test_2_a_rotated_secret_file_takes_effect_without_a_restart(self):
        body = self.put_and_publish("rotate-src", "rotate/before")
        self.wait_replicated("rotate-dst", "rotate/before", body)
        second = ("ROTATESECOND00000002", "rotate-second-secret-987654321")
        ceph = self.rig.ceph
        ceph.radosgw_admin("key", "create", "--uid", "other", "--key-type", "s3",
                           "--access-key", second[0], "--secret", second[1])
        self.secret.publish(access_key_id=second[0], secret_access_key=second[1])
        # The old key is gone from RGW before archie next writes: only the new one can work.
        ceph.radosgw_admin("key", "rm", "--uid", "other", "--key-type", "s3", "--access-key", self.first_keys[0])
        time.sleep(2.5)  # keys from files are looked at again at most every 2 s, on use
        body = self.put_and_publish("rotate-src", "rotate/after")
        self.wait_replicated("rotate-dst", "rotate/after", body)
        self.archie.wait_for_log("secret file changed; the new value applies to new requests", timeout=5,
                                 secret="file " + self.secret.path("secret_access_key"))
        self.assertEqual(self.failed_requests("rotated"), {})

        # A broken rotation (empty files) is reported and the working keys stay in use.
        self.secret.publish(access_key_id="", secret_access_key="")
        time.sleep(2.5)
        body = self.put_and_publish("rotate-src", "rotate/after-bad")
        self.wait_replicated("rotate-dst", "rotate/after-bad", body)
        refused = metric_samples(self.http_port, "archie_secret_reloads_total").get('{outcome="refused"}', 0)
        self.assertGreaterEqual(refused, 2)
        self.assertEqual(self.failed_requests("rotated"), {})
        log_text = json.dumps(self.archie.logs())
        self.assertNotIn(second[1], log_text)
        self.assertNotIn(self.first_keys[1], log_text)


if __name__ == "__main__":
    unittest.main()
