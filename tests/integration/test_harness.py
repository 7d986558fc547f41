"""The shared test kit (testkit/) does what the other tests rely on: the configs it builds
(config_builder) are the TOML meant and archie accepts them, its events (events) spell keys as
MinIO does, its process wrapper (archie_process) reads archie's log and metrics and gives up
when archie has exited, and its reference S3 client (rgw_user) round-trips objects. Servers:
archie itself (its admin HTTP server on 127.0.0.1) and a Ceph RGW for the S3 client."""
import json
import os
import shutil
import tempfile
import time
import tomllib
import unittest

from testkit.archie_process import ArchieProcess, run_cli, write_config
from testkit.config_builder import archie_config, fs_store, queue_section, route, s3_store
from testkit.events import minio_event
from testkit.fixtures import close_all, start_rig
from testkit.metrics import metric
from testkit.net import free_port
from testkit.paths import REPO
from testkit.rgw_user import RgwUser
from testkit.waiting import wait_until

FIXTURES = os.path.join(REPO, "tests", "fixtures", "events")


def closed_nats():
    """A NATS URL nothing listens on: these processes are about the process, not the queue."""
    return f"nats://127.0.0.1:{free_port()}"


class ConfigBuilderTest(unittest.TestCase):
    def full_config(self, fs_root):
        return archie_config(
            [closed_nats()], http_port=0, log_level="debug", concurrency=3, shutdown_wait="2s",
            queue=queue_section(["minio.events"], stream="minio-events", durable="archie", ack_wait="10s",
                                dead_letter_subject="archie.dead", nak_backoff={"base": "200ms", "ceiling": "2s"}),
            replication={"part_size_mib": 5, "buffer_budget_mib": 64},
            stores={"src": s3_store("http://127.0.0.1:1", "AKIDSOURCE", secret_env="HARNESS_TEST_SECRET"),
                    "local": fs_store(fs_root, fsync=False)},
            routes=[route("src", "photos", [("local", "mirror"), ("src", "copy")], exclude_copy=["^tmp/"]),
                    route("src", "music", [("local", "tunes")])])

    def test_configs_parse_to_the_tables_routes_and_destinations_asked_for(self):
        doc = tomllib.loads(self.full_config("/srv/replica"))
        self.assertEqual(doc["worker"], {"concurrency": 3, "shutdown_wait": "2s"})
        self.assertEqual(doc["queue"]["stream"], {"name": "minio-events", "subjects": ["minio.events"]})
        self.assertEqual(doc["queue"]["consumer"], {"durable": "archie", "ack_wait": "10s"})
        self.assertEqual(doc["queue"]["nak_backoff"], {"base": "200ms", "ceiling": "2s"})
        self.assertNotIn("secret_access_key", doc["stores"]["src"])
        self.assertEqual(doc["stores"]["local"], {"type": "fs", "root": "/srv/replica", "fsync": False})
        self.assertEqual([(r["source"], r.get("exclude_copy"), [(d["store"], d["bucket"]) for d in r["destinations"]])
                          for r in doc["route"]],
                         [({"store": "src", "bucket": "photos"}, ["^tmp/"], [("local", "mirror"), ("src", "copy")]),
                          ({"store": "src", "bucket": "music"}, None, [("local", "tunes")])])

    def test_archie_check_config_accepts_a_built_config(self):
        root = tempfile.mkdtemp(prefix="archie-harness-")
        self.addCleanup(shutil.rmtree, root, True)
        path = write_config(self.full_config(root), directory=root)
        r = run_cli("check-config", "--config", path, env={"HARNESS_TEST_SECRET": "not-a-real-secret"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("<redacted, env HARNESS_TEST_SECRET>", r.stdout)
        self.assertNotIn("not-a-real-secret", r.stdout + r.stderr)


class MinioEventTest(unittest.TestCase):
    def test_keys_are_spelled_as_minio_spells_them(self):
        with open(os.path.join(FIXTURES, "special-chars.json")) as f:
            recorded = json.load(f)
        record = recorded["Records"][0]
        bucket, key = recorded["Key"].split("/", 1)
        ours = json.loads(minio_event(record["eventName"], bucket, key))
        self.assertEqual(ours["Key"], recorded["Key"])
        self.assertEqual(ours["Records"][0]["s3"]["object"]["key"], record["s3"]["object"]["key"])
        self.assertEqual(ours["Records"][0]["s3"]["bucket"]["name"], record["s3"]["bucket"]["name"])


class ProcessTest(unittest.TestCase):
    def test_the_admin_port_and_metrics_of_a_running_archie_are_read_from_its_log(self):
        archie = ArchieProcess(archie_config([closed_nats()], http_port=0, shutdown_wait="2s"))
        self.addCleanup(archie.stop)
        port = archie.admin_port()
        self.assertGreater(port, 0)  # port 0 in the config: the kernel's choice, as logged
        self.assertEqual(metric(archie.metrics(), "archie_build_info"), 1)
        self.assertTrue(archie.logged("admin server listening", port=port))

    def test_waiting_for_a_log_line_stops_as_soon_as_archie_has_exited(self):
        archie = ArchieProcess("[worker]\nconcurrency = 0\n")  # refused at load: exits 3
        self.addCleanup(archie.stop)
        started = time.monotonic()
        with self.assertRaises(AssertionError) as failed:
            archie.wait_for_log("consuming", timeout=60)
        self.assertLess(time.monotonic() - started, 30)
        self.assertEqual(archie.proc.returncode, 3)
        self.assertIn("'consuming'", str(failed.exception))


class WaitUntilTest(unittest.TestCase):
    def test_returns_the_first_true_value(self):
        calls = iter([0, None, "", "third"])
        self.assertEqual(wait_until(lambda: next(calls), 5, "the third call", interval=0.01), "third")

    def test_times_out_naming_the_condition_and_the_last_retried_error(self):
        def refused():
            raise ConnectionRefusedError("nobody home")
        with self.assertRaises(AssertionError) as failed:
            wait_until(refused, 0.2, "a server to answer", interval=0.01, retry_on=(OSError,),
                       context=lambda: "context text")
        self.assertIn("a server to answer", str(failed.exception))
        self.assertIn("nobody home", str(failed.exception))
        self.assertIn("context text", str(failed.exception))


class RgwUserTest(unittest.TestCase):
    rig = None

    @classmethod
    def setUpClass(cls):
        cls.rig = start_rig([("harness-bucket", "archie", 0)], nats=False, ceph=True)

    @classmethod
    def tearDownClass(cls):
        close_all(cls.rig)

    def test_put_head_get_list_and_delete_round_trip_as_the_rig_user(self):
        s3 = RgwUser(self.rig, "archie", 0)
        other_endpoint = RgwUser(self.rig, "archie", 1)  # both gateways serve the same cluster
        body = os.urandom(70_000)
        etag = s3.put("harness-bucket", "dir/a key+plus ü", body, content_type="image/x-test",
                      metadata={"origin": "harness"})
        for i in range(3):
            s3.put("harness-bucket", f"dir/n{i}", b"x")
        status, headers, _ = other_endpoint.head("harness-bucket", "dir/a key+plus ü")
        self.assertEqual((status, headers["etag"].strip('"'), headers["content-type"], headers["x-amz-meta-origin"]),
                         (200, etag, "image/x-test", "harness"))
        self.assertEqual(s3.get("harness-bucket", "dir/a key+plus ü")[2], body)
        self.assertEqual(sorted(s3.list_keys("harness-bucket", "dir/", page_size=2)),
                         ["dir/a key+plus ü", "dir/n0", "dir/n1", "dir/n2"])
        s3.delete("harness-bucket", "dir/a key+plus ü")
        self.assertEqual(s3.head("harness-bucket", "dir/a key+plus ü")[0], 404)


if __name__ == "__main__":
    unittest.main()
