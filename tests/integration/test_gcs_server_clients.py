#!/usr/bin/python3
"""The GCS test server with Google's own clients.

Server: one testkit/gcs_server on 127.0.0.1 for the module (tests/integration/gcs_server_fixture.py).

- tests/gcs/fidelity.mjs runs Google's Node.js client (@google-cloud/storage, installed into
  tests/gcs/node_modules by scripts/install-deps; `npm ci` here if it is missing) against the
  server. Skipped only when node_modules is missing and npm is not installed.
- gcloud storage (skipped when /usr/bin/gcloud is absent) copies a 200 MiB file up and down
  in an isolated CLOUDSDK_CONFIG, once with its defaults (parallel composite upload + sliced
  download) and once as a single stream, and authenticates once through the server's /token
  with the generated service-account key.

Run from the repo root with the system Python:

    /usr/bin/python3 -m unittest -v tests.integration.test_gcs_server_clients
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from tests.integration import gcs_server_fixture as fixture
from tests.integration.gcs_server_fixture import MIB, get_meta, new_bucket

GCS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gcs")

setUpModule = fixture.start_server
tearDownModule = fixture.stop_server


# --------------------------------------------------------------------------
# Google's Node.js client


class NodeClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("node"):
            raise unittest.SkipTest("node is not installed")
        if not os.path.isdir(os.path.join(GCS_DIR, "node_modules", "@google-cloud", "storage")):
            if not shutil.which("npm"):
                raise unittest.SkipTest("tests/gcs/node_modules is missing and npm is not installed")
            subprocess.run(["npm", "ci", "--prefix", GCS_DIR, "--no-audit", "--no-fund"], check=True,
                           stdout=subprocess.DEVNULL, timeout=600)

    def test_fidelity_script(self):
        bucket = new_bucket("node")
        home = tempfile.mkdtemp(prefix="gcs-node-home-")
        try:
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("GOOGLE_", "GCLOUD_", "CLOUDSDK_", "STORAGE_EMULATOR"))}
            env.update(HOME=home, GCS_STATE=os.path.join(fixture.GCS.dir, "state", "state.json"), GCS_BUCKET=bucket,
                       GCE_METADATA_HOST="127.0.0.1:%d" % fixture.GCS.port)
            started = time.time()
            r = subprocess.run(["node", os.path.join(GCS_DIR, "fidelity.mjs")], env=env, cwd=GCS_DIR,
                               capture_output=True, text=True, timeout=300)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
        self.assertEqual(r.returncode, 0, r.stdout[-6000:] + r.stderr[-3000:] + fixture.GCS.log_tail())
        self.assertEqual(lines[-1].get("check"), "ALL", r.stdout)
        names = [x["check"] for x in lines]
        self.assertIn("metadata-server credentials (GCE_METADATA_HOST)", names)
        sys.stderr.write("\n  node: %d checks in %.1fs ... " % (len(lines) - 1, time.time() - started))


# --------------------------------------------------------------------------
# gcloud storage


GCLOUD = shutil.which("gcloud")


@unittest.skipUnless(GCLOUD, "gcloud is not installed")
class GcloudTest(unittest.TestCase):
    BIG = 200 * MIB

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="gcs-gcloud-")
        cls.big = os.path.join(cls.work, "big.bin")
        h = hashlib.md5()
        with open(cls.big, "wb") as f:
            for _ in range(cls.BIG // (8 * MIB)):
                d = os.urandom(8 * MIB)
                h.update(d)
                f.write(d)
        cls.big_md5 = h.hexdigest()
        cls.token_file = os.path.join(cls.work, "token")
        with open(cls.token_file, "w") as f:
            f.write(fixture.GCS.static_token)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def gcloud(self, config, *args, env_extra=None, token=True, timeout=300):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSDK_", "GOOGLE_", "BOTO_"))}
        env.update({
            "CLOUDSDK_CONFIG": config,
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": fixture.GCS.endpoint + "/storage/v1/",
            "CLOUDSDK_CORE_PROJECT": "archie-test",
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "1",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
            "CLOUDSDK_METRICS_ENVIRONMENT": "archie-tests",
        })
        if token:
            env["CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"] = self.token_file
        env.update(env_extra or {})
        started = time.time()
        r = subprocess.run([GCLOUD] + list(args), env=env, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, "gcloud %s:\n%s\n%s\n%s" % (" ".join(args), r.stdout[-3000:],
                                                                      r.stderr[-3000:], fixture.GCS.log_tail()))
        return r, time.time() - started

    def md5_file(self, path):
        h = hashlib.md5()
        with open(path, "rb") as f:
            for d in iter(lambda: f.read(8 * MIB), b""):
                h.update(d)
        return h.hexdigest()

    def _copy_round_trip(self, tag, env_extra):
        bucket = new_bucket("gc")
        config = tempfile.mkdtemp(prefix="cfg-", dir=self.work)
        out = os.path.join(self.work, "out-%s.bin" % tag)
        fixture.GCS.requests_log(clear=True)
        _, up = self.gcloud(config, "storage", "cp", self.big, "gs://%s/dir/big.bin" % bucket, env_extra=env_extra)
        log_up = fixture.GCS.requests_log(clear=True)
        _, down = self.gcloud(config, "storage", "cp", "gs://%s/dir/big.bin" % bucket, out, env_extra=env_extra)
        log_down = fixture.GCS.requests_log(clear=True)
        self.assertEqual(os.path.getsize(out), self.BIG)
        self.assertEqual(self.md5_file(out), self.big_md5)
        os.unlink(out)
        status, meta = get_meta(bucket, "dir/big.bin")
        self.assertEqual(meta["size"], str(self.BIG))
        sys.stderr.write("\n  gcloud %s: up %.1fs, down %.1fs ... " % (tag, up, down))
        return log_up, log_down, meta

    def test_large_copy_with_defaults(self):
        """Defaults: parallel composite upload (components + compose) and sliced download."""
        log_up, log_down, meta = self._copy_round_trip("defaults", {})
        kinds = [r["kind"] for r in log_up]
        self.assertIn("object.compose", kinds)
        self.assertGreaterEqual(kinds.count("upload.initiate"), 2)
        self.assertEqual([r for r in log_up if r["kind"] == "object.delete" and r["status"] != 204], [])
        self.assertIn("componentCount", meta)
        ranged = [r for r in log_down if r["kind"] == "object.download" and r["status"] == 206]
        self.assertGreaterEqual(len(ranged), 2)
        self.assertTrue(all(r["path"].startswith("/download/storage/v1/") for r in ranged))

    def test_large_copy_single_stream(self):
        env = {"CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED": "False",
               "CLOUDSDK_STORAGE_SLICED_OBJECT_DOWNLOAD_THRESHOLD": "0"}
        log_up, log_down, meta = self._copy_round_trip("single-stream", env)
        init = [r for r in log_up if r["kind"] == "upload.initiate"]
        puts = [r for r in log_up if r["kind"] == "upload.chunk"]
        self.assertEqual(len(init), 1)
        self.assertEqual(init[0]["path"], "/resumable/upload/storage/v1/b/%s/o" % meta["bucket"])
        self.assertEqual(sum(r["bytes_in"] for r in puts), self.BIG)
        self.assertEqual(puts[-1]["status"], 200)
        self.assertEqual(meta["md5Hash"], base64.b64encode(bytes.fromhex(self.big_md5)).decode())
        self.assertEqual(len([r for r in log_down if r["kind"] == "object.download"]), 1)

    def test_service_account_key_through_token_endpoint(self):
        bucket = new_bucket("gsa")
        config = tempfile.mkdtemp(prefix="cfg-sa-", dir=self.work)
        small = os.path.join(self.work, "small.txt")
        with open(small, "w") as f:
            f.write("replicated by archie\n")
        fixture.GCS.requests_log(clear=True)
        self.gcloud(config, "auth", "activate-service-account", "--key-file=" + fixture.GCS.sa_key_path, token=False)
        self.gcloud(config, "storage", "cp", small, "gs://%s/sa/small.txt" % bucket, token=False)
        r, _ = self.gcloud(config, "storage", "cat", "gs://%s/sa/small.txt" % bucket, token=False)
        self.assertEqual(r.stdout, "replicated by archie\n")
        log = fixture.GCS.requests_log()
        token_calls = [x for x in log if x["kind"] == "token"]
        self.assertGreaterEqual(len(token_calls), 1)
        self.assertTrue(all(x["status"] == 200 for x in token_calls), token_calls)
        api = [x for x in log if x["path"].startswith(("/storage/", "/upload/", "/download/"))]
        self.assertTrue(api and all(x["principal"] == fixture.GCS.sa_email for x in api), api)


if __name__ == "__main__":
    unittest.main()
