"""archie's own S3 and GCS clients driven through tests/tools/s3_probe and gcs_probe: one
operation per run, each printing one JSON line (run_probe, BackgroundProbe, rgw_probe)."""
import json
import os
import subprocess

from testkit.paths import S3_PROBE


# Variables the probes read as options: cleared so that the caller's environment never leaks in.
S3_PROBE_VARS = ("S3_CONTENT_TYPE", "S3_CACHE_CONTROL", "S3_META", "S3_PAYLOAD_SIGNING", "S3_MAX_CONNECTIONS",
                 "S3_REGION", "S3_CONNECT_TIMEOUT_MS")
GCS_PROBE_VARS = ("GCS_CONTENT_TYPE", "GCS_CACHE_CONTROL", "GCS_CONTENT_DISPOSITION", "GCS_CONTENT_ENCODING",
                  "GCS_META", "GCS_PART_ORDER", "GCS_MAX_CONNECTIONS", "GCE_METADATA_HOST")


def probe_env(env=None, clear=S3_PROBE_VARS):
    e = dict(os.environ)
    for k in clear:
        e.pop(k, None)
    e["ASAN_OPTIONS"] = "detect_leaks=0"
    e.update(env or {})
    return e


def parse_probe(argv, rc, out, err):
    """The probe's last JSON line; a sanitizer report, a non-zero exit or no output is a failure.
    argv is [probe, endpoint, credential, credential, operation...]."""
    name = os.path.basename(argv[0])
    if "Sanitizer" in err or "runtime error:" in err:
        raise AssertionError("sanitizer report from %s %s:\n%s" % (name, argv[4:], err[-6000:]))
    if rc != 0:
        raise AssertionError("%s %s exited %s\nstdout: %s\nstderr: %s" % (name, argv[4:], rc, out[-2000:], err[-4000:]))
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if not lines:
        raise AssertionError("%s %s printed nothing; stderr: %s" % (name, argv[4:], err[-2000:]))
    return json.loads(lines[-1])


def run_probe(argv, env, timeout=300):
    """Runs one probe operation to its end; its JSON result."""
    cp = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    return parse_probe(argv, cp.returncode, cp.stdout, cp.stderr)


class BackgroundProbe:
    """One probe operation in the background (for fault injection while it runs)."""

    def __init__(self, argv, env):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                     stdin=subprocess.DEVNULL)

    def running(self):
        return self.proc.poll() is None

    def result(self, timeout=300):
        out, err = self.proc.communicate(timeout=timeout)
        return parse_probe(self.argv, self.proc.returncode, out, err)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def s3_probe_argv(endpoint, access, secret, *args):
    return [S3_PROBE, endpoint, access, secret] + [str(a) for a in args]


def rgw_probe(rig, user, endpoint_index, *args, env=None, check=True, timeout=600):
    """One s3_probe operation (archie's S3 client) as a rig user; with check, a result that is
    not ok fails."""
    access, secret = rig.ceph.users[user]
    result = run_probe(s3_probe_argv(rig.ceph.endpoints[endpoint_index], access, secret, *args), probe_env(env),
                       timeout=timeout)
    if check and not result.get("ok"):
        raise AssertionError(f"s3_probe {args}: {result}")
    return result
