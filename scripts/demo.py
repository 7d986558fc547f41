#!/usr/bin/env python3
"""archie's main job, end to end, on local servers: objects uploaded to a MinIO-style source
bucket (Ceph RGW) are replicated by `archie run` to an S3 bucket on another endpoint and to a
local directory after their bucket events are published to NATS JetStream. Prints what
happened at each step and stops everything at the end."""
import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.integration.minio_events import minio_event  # noqa: E402
from tests.rig.nats_client import NatsClient  # noqa: E402
from tests.rig.rig import Rig, free_port  # noqa: E402

SRC, DST, FS_BUCKET = "photos", "photos-backup", "photos"


def say(text):
    print(f"\n== {text}", flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--archie", default=os.path.join(REPO, "build-release", "src", "archie"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="archie-demo-")
    started = time.monotonic()
    say("starting nats-server (JetStream) and a throwaway Ceph cluster with two S3 endpoints on 127.0.0.1")
    with Rig(nats=True, ceph=True) as rig:
        ceph = rig.ceph
        print(f"   nats: {rig.nats.url}   s3 source: {ceph.endpoints[0]}   s3 destination: {ceph.endpoints[1]}")
        ceph.make_bucket(SRC, user="archie", endpoint_index=0)
        ceph.make_bucket(DST, user="other", endpoint_index=1)
        fs_root = os.path.join(work, "replica-dir")
        os.makedirs(fs_root)
        a_key, a_secret = ceph.users["archie"]
        o_key, o_secret = ceph.users["other"]
        port = free_port()
        config = f"""
[http]
address = "127.0.0.1"
port = {port}
[worker]
concurrency = 16
shutdown_wait = "10s"
[nats]
urls = ["{rig.nats.url}"]
[queue]
dead_letter_subject = "archie.dead-letter"
[queue.stream]
name = "minio-events"
subjects = ["minio.events"]
[replication]
part_size_mib = 8
buffer_budget_mib = 128
[stores.minio]
type = "s3"
endpoint = "{ceph.endpoints[0]}"
access_key_id = "{a_key}"
secret_access_key_env = "DEMO_SOURCE_SECRET"
[stores.backup]
type = "s3"
endpoint = "{ceph.endpoints[1]}"
access_key_id = "{o_key}"
secret_access_key_env = "DEMO_BACKUP_SECRET"
[stores.local]
type = "fs"
root = "{fs_root}"
[[route]]
source = {{ store = "minio", bucket = "{SRC}" }}
exclude_copy = ["^tmp/"]
[[route.destinations]]
store = "backup"
bucket = "{DST}"
[[route.destinations]]
store = "local"
bucket = "{FS_BUCKET}"
"""
        config_path = os.path.join(work, "archie.toml")
        with open(config_path, "w") as f:
            f.write(config)
        env = dict(os.environ, DEMO_SOURCE_SECRET=a_secret, DEMO_BACKUP_SECRET=o_secret)
        say("archie check-config (secrets are redacted)")
        out = subprocess.run([args.archie, "check-config", "--config", config_path], env=env, capture_output=True,
                             text=True)
        print("\n".join("   " + l for l in out.stdout.splitlines() if "secret" in l or l.startswith("[stores")))
        log_path = os.path.join(work, "archie.log")
        log = open(log_path, "w")
        say("starting `archie run`")
        proc = subprocess.Popen([args.archie, "run", "--config", config_path], env=env, stderr=log,
                                stdout=subprocess.DEVNULL)

        def logs():
            with open(log_path) as f:
                return [json.loads(l) for l in f if l.startswith("{")]

        def wait_log(pred, timeout=120):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise SystemExit(f"archie exited with {proc.returncode}; see {log_path}")
                found = [l for l in logs() if pred(l)]
                if found:
                    return found
                time.sleep(0.1)
            raise SystemExit(f"timed out; see {log_path}")

        try:
            wait_log(lambda l: l.get("msg") == "consuming")
            print(f"   ready: {urllib.request.urlopen(f'http://127.0.0.1:{port}/ready').read().decode().strip()}")

            say("uploading objects to the source bucket with the AWS CLI")
            objects = {"cats/tabby.jpg": 200_000, "cats/big album.zip": 50 * 1024 * 1024,
                       "dogs/Schäferhund +1.png": 4096, "empty.txt": 0, "tmp/scratch.bin": 1000}
            files = {}
            for i, (key, size) in enumerate(objects.items()):
                path = os.path.join(work, f"obj{i}")
                with open(path, "wb") as f:
                    f.write(os.urandom(size))
                files[key] = path
                r = ceph.aws(["s3", "cp", path, f"s3://{SRC}/{key}", "--content-type", "image/demo",
                              "--metadata", "owner=demo"], user="archie", endpoint_index=0)
                if r.returncode != 0:
                    raise SystemExit(f"aws s3 cp failed: {r.stderr}")
                print(f"   put {key!r} ({size} bytes)")

            say("publishing their MinIO bucket events to JetStream (what MinIO's NATS target sends)")
            nats = NatsClient([rig.nats.url])
            t0 = time.monotonic()
            for key, size in objects.items():
                name = "s3:ObjectCreated:CompleteMultipartUpload" if size > 8 << 20 else "s3:ObjectCreated:Put"
                nats.js_publish("minio.events", minio_event(name, SRC, key, size=size))
            wait_log(lambda l: l.get("msg") == "event skipped" and l.get("key") == "tmp/scratch.bin")
            for key in objects:
                if not key.startswith("tmp/"):
                    wait_log(lambda l, k=key: l.get("msg") == "replicated" and l.get("key") == k)
            print(f"   all events handled in {time.monotonic() - t0:.2f}s")

            say("checking every replica byte for byte")
            print(f"   {'key':28} {'bytes':>9}  {'S3 backup':10} {'local dir':10}")
            for key, path in objects.items():
                want = sha256(files[key])
                got = os.path.join(work, "check")
                r = ceph.aws(["s3", "cp", f"s3://{DST}/{key}", got], user="other", endpoint_index=1)
                s3_ok = r.returncode == 0 and sha256(got) == want
                fs_path = os.path.join(fs_root, FS_BUCKET, key)
                fs_ok = os.path.exists(fs_path) and sha256(fs_path) == want
                expect = "excluded" if key.startswith("tmp/") else "identical"
                verdict = lambda ok: "identical" if ok else "absent"
                print(f"   {key:28} {objects[key]:>9}  {verdict(s3_ok):10} {verdict(fs_ok):10}  (expected: {expect})")

            say("deleting cats/tabby.jpg at the source and publishing the delete event")
            ceph.aws(["s3", "rm", f"s3://{SRC}/cats/tabby.jpg"], user="archie", endpoint_index=0)
            nats.js_publish("minio.events", minio_event("s3:ObjectRemoved:Delete", SRC, "cats/tabby.jpg"))
            wait_log(lambda l: l.get("msg") == "removed" and l.get("key") == "cats/tabby.jpg")
            gone = ceph.aws(["s3api", "head-object", "--bucket", DST, "--key", "cats/tabby.jpg"], user="other",
                            endpoint_index=1).returncode != 0
            print(f"   backup copy gone: {gone}; local copy gone: "
                  f"{not os.path.exists(os.path.join(fs_root, FS_BUCKET, 'cats/tabby.jpg'))}")

            say("publishing a malformed event: it is terminated and dead-lettered with a reason")
            nats.js_publish("minio.events", b'{"EventName": "s3:ObjectCreated:Put", "Records": 42}')
            entry = wait_log(lambda l: l.get("msg") == "malformed event")[-1]
            time.sleep(0.5)
            dead = nats.stream_info("minio-events-dead-letter")["state"]["messages"]
            print(f"   reason: {entry['code']}: {entry['reason']}; dead-letter stream holds {dead} message(s)")

            say("metrics (archie_messages_processed_total)")
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
            for line in metrics.splitlines():
                if line.startswith("archie_messages_processed_total{"):
                    print("   " + line)
            nats.close()
        finally:
            say("stopping archie (SIGTERM: graceful drain) and the servers")
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
            print(f"   archie exited with {code}")
    shutil.rmtree(work, ignore_errors=True)
    say(f"demo finished in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    main()
