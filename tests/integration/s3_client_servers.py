"""The servers and helpers that the tests of archie's S3 client (src/store/s3, src/http/client)
share: test_s3_client_ops (normal work) and test_s3_client_faults (errors and faults).

Servers: one throwaway Ceph cluster with two radosgw endpoints (testkit/rig.py), started once
for each test module by its setUpModule (imported from here). The client is driven through
tests/tools/s3_probe (ARCHIE_S3_PROBE, else build/tests/s3_probe), one operation per run, each
printing one JSON line. The probe is an ASan build: every run must exit 0 with nothing from a
sanitizer on stderr. awscli and the test kit's own signer are used as reference clients, so
that a key or a body the archie client gets wrong in both directions (write and read back)
still shows up."""
import json
import tempfile

from testkit.fixtures import close_all, require_built, start_rig, unique_name
from testkit.paths import S3_PROBE as PROBE
from testkit.probes import BackgroundProbe, probe_env, run_probe, s3_probe_argv

RIG = None
CEPH = None
WORK = None


def setUpModule():
    global RIG, CEPH, WORK
    require_built(PROBE, "ARCHIE_S3_PROBE")
    RIG = start_rig(nats=False, ceph=True)
    CEPH = RIG.ceph
    WORK = tempfile.mkdtemp(prefix="archie-s3-client-")


def tearDownModule():
    close_all(RIG, WORK)


# --------------------------------------------------------------------------
# helpers

def new_bucket(stem):
    name = unique_name(stem)
    r = probe("mkbucket", name)
    if not r["ok"]:
        raise AssertionError("mkbucket %s: %s" % (name, r))
    return name


def probe_argv(args, endpoint, user, secret):
    """endpoint: an index into the rig's endpoints, or a URL."""
    ak, sk = CEPH.users[user]
    url = endpoint if isinstance(endpoint, str) else CEPH.endpoints[endpoint]
    return s3_probe_argv(url, ak, sk if secret is None else secret, *args)


def probe(*args, env=None, endpoint=0, user="archie", secret=None, timeout=300):
    return run_probe(probe_argv(args, endpoint, user, secret), probe_env(env), timeout=timeout)


def background_probe(*args, env=None, endpoint=0):
    """One probe run in the background (for fault injection while it runs)."""
    return BackgroundProbe(probe_argv(args, endpoint, "archie", None), probe_env(env))


def aws_json(args, endpoint=0, timeout=600):
    cp = CEPH.aws(list(args) + ["--output", "json"], endpoint_index=endpoint, timeout=timeout)
    if cp.returncode != 0:
        raise AssertionError("aws %s failed (rc=%d): %s" % (args[:2], cp.returncode, cp.stderr[-2000:]))
    return json.loads(cp.stdout) if cp.stdout.strip() else {}


def aws_list_objects(bucket):
    """Every object in the bucket (Key, Size, ETag, ...) as awscli decodes the listing (it asks
    for encoding-type=url)."""
    objects, token = [], None
    while True:
        args = ["s3api", "list-objects-v2", "--bucket", bucket]
        if token:
            args += ["--continuation-token", token]
        page = aws_json(args)
        objects += page.get("Contents", [])
        token = page.get("NextContinuationToken")
        if not token:
            return objects


def aws_list_keys(bucket):
    """Every key in the bucket as awscli decodes it."""
    return [o["Key"] for o in aws_list_objects(bucket)]
