#!/usr/bin/env python3
"""archie's main job, end to end, on local servers: objects uploaded to a MinIO-style source
bucket (Ceph RGW) are replicated by `archie run` to an S3 bucket on another endpoint and to a
local directory after their bucket events are published to NATS JetStream. Prints what
happened at each step and stops everything at the end."""
import argparse
import os
import shutil
import signal
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from testkit.archie_process import ArchieProcess, run_cli, write_config  # noqa: E402
from testkit.config_builder import archie_config, fs_store, queue_section, rgw_store, route  # noqa: E402
from testkit.events import publish_event  # noqa: E402
from testkit.files import sha256_file  # noqa: E402
from testkit.nats_client import NatsClient  # noqa: E402
from testkit.net import free_port, http_get  # noqa: E402
from testkit.rig import Rig  # noqa: E402

SRC, DST, FS_BUCKET = "photos", "photos-backup", "photos"
SUBJECT = "minio.events"


def say(text):
    print(f"\n== {text}", flush=True)


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
        port = free_port()
        config = archie_config(
            [rig.nats.url], http_port=port, concurrency=16, shutdown_wait="10s",
            queue=queue_section([SUBJECT], stream="minio-events", dead_letter_subject="archie.dead-letter",
                                fetch_expires=None),
            replication={"part_size_mib": 8, "buffer_budget_mib": 128},
            stores={"minio": rgw_store(rig, "archie", 0, secret_env="DEMO_SOURCE_SECRET"),
                    "backup": rgw_store(rig, "other", 1, secret_env="DEMO_BACKUP_SECRET"),
                    "local": fs_store(fs_root)},
            routes=[route("minio", SRC, [("backup", DST), ("local", FS_BUCKET)], exclude_copy=["^tmp/"])])
        config_path = write_config(config, path=os.path.join(work, "archie.toml"))
        env = dict(DEMO_SOURCE_SECRET=ceph.users["archie"][1], DEMO_BACKUP_SECRET=ceph.users["other"][1])
        say("archie check-config (secrets are redacted)")
        out = run_cli("check-config", "--config", config_path, env=env, binary=args.archie)
        print("\n".join("   " + l for l in out.stdout.splitlines() if "secret" in l or l.startswith("[stores")))
        say("starting `archie run`")
        archie = ArchieProcess(config, env=env, binary=args.archie, config_path=config_path,
                               raw_log_path=os.path.join(work, "archie.log"))

        def wait_log(msg, timeout=120, **fields):
            try:
                return archie.wait_for_log(msg, timeout=timeout, **fields)
            except AssertionError as e:
                raise SystemExit(str(e)) from None

        try:
            wait_log("consuming")
            print(f"   ready: {http_get(f'http://127.0.0.1:{port}/ready')[2].decode().strip()}")

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
                publish_event(nats, name, SRC, key, subject=SUBJECT, size=size)
            wait_log("event skipped", key="tmp/scratch.bin")
            for key in objects:
                if not key.startswith("tmp/"):
                    wait_log("replicated", key=key)
            print(f"   all events handled in {time.monotonic() - t0:.2f}s")

            say("checking every replica byte for byte")
            print(f"   {'key':28} {'bytes':>9}  {'S3 backup':10} {'local dir':10}")
            for key, path in objects.items():
                want = sha256_file(files[key])
                got = os.path.join(work, "check")
                r = ceph.aws(["s3", "cp", f"s3://{DST}/{key}", got], user="other", endpoint_index=1)
                s3_ok = r.returncode == 0 and sha256_file(got) == want
                fs_path = os.path.join(fs_root, FS_BUCKET, key)
                fs_ok = os.path.exists(fs_path) and sha256_file(fs_path) == want
                expect = "excluded" if key.startswith("tmp/") else "identical"
                verdict = lambda ok: "identical" if ok else "absent"
                print(f"   {key:28} {objects[key]:>9}  {verdict(s3_ok):10} {verdict(fs_ok):10}  (expected: {expect})")

            say("deleting cats/tabby.jpg at the source and publishing the delete event")
            ceph.aws(["s3", "rm", f"s3://{SRC}/cats/tabby.jpg"], user="archie", endpoint_index=0)
            publish_event(nats, "s3:ObjectRemoved:Delete", SRC, "cats/tabby.jpg", subject=SUBJECT)
            wait_log("removed", key="cats/tabby.jpg")
            gone = ceph.aws(["s3api", "head-object", "--bucket", DST, "--key", "cats/tabby.jpg"], user="other",
                            endpoint_index=1).returncode != 0
            print(f"   backup copy gone: {gone}; local copy gone: "
                  f"{not os.path.exists(os.path.join(fs_root, FS_BUCKET, 'cats/tabby.jpg'))}")

            say("publishing a malformed event: it is terminated and dead-lettered with a reason")
            nats.js_publish(SUBJECT, b'{"EventName": "s3:ObjectCreated:Put", "Records": 42}')
            entry = wait_log("malformed event")
            time.sleep(0.5)
            dead = nats.stream_info("minio-events-dead-letter")["state"]["messages"]
            print(f"   reason: {entry['code']}: {entry['reason']}; dead-letter stream holds {dead} message(s)")

            say("metrics (archie_messages_processed_total)")
            metrics = http_get(f"http://127.0.0.1:{port}/metrics")[2].decode()
            for line in metrics.splitlines():
                if line.startswith("archie_messages_processed_total{"):
                    print("   " + line)
            nats.close()
        finally:
            say("stopping archie (SIGTERM: graceful drain) and the servers")
            archie.signal(signal.SIGTERM)
            code = archie.wait(timeout=60)
            archie.stop()
            print(f"   archie exited with {code}")
    shutil.rmtree(work, ignore_errors=True)
    say(f"demo finished in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    main()
