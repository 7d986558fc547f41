"""What the integration tests, scripts/demo.py and the benches need around the servers of
tests/rig, in one place:

* processes: `archie run` (ArchieProcess) or any archie-built binary that logs JSON lines
  (LoggedProcess): log capture, waiting for a log line, the admin port, metrics scraping;
* configs: archie.toml text from a few parameters (archie_config, with s3/rgw/fs/gcs store,
  route and queue builders), and the smallest RGW-to-RGW replication (rgw_to_rgw_config);
* S3 and GCS: calls as one rig user through the rig's own SigV4 signer (RgwUser), and archie's
  own clients through tests/tools/s3_probe and gcs_probe (run_probe, BackgroundProbe);
* events: bucket events exactly as MinIO's NATS target publishes them (minio_event);
* waiting for a condition with a deadline (wait_until), plus small file helpers.

Run with /usr/bin/python3; standard library only."""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from xml.etree import ElementTree

from tests.rig.rig import Rig, free_port, s3_request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _built(env_name, *path):
    """A binary of the build under test: meson passes its path in env_name (tests/meson.build)."""
    return os.environ.get(env_name) or os.path.join(REPO, "build", *path)


ARCHIE_BIN = _built("ARCHIE_BIN", "src", "archie")
QUEUE_WORKER = _built("ARCHIE_QUEUE_WORKER", "tests", "queue_worker")
S3_PROBE = _built("ARCHIE_S3_PROBE", "tests", "s3_probe")
GCS_PROBE = _built("ARCHIE_GCS_PROBE", "tests", "gcs_probe")

EVENT_SUBJECT = "minio.events"
MiB = 1 << 20


# --------------------------------------------------------------------------- waiting

def wait_until(pred, timeout, what, interval=0.05, retry_on=(), context=None):
    """pred()'s first truthy value within timeout seconds; else AssertionError naming `what`,
    the last exception of a type in retry_on (raised by servers still settling) and context()."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = pred()
            if value:
                return value
        except retry_on as e:
            last_error = e
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error})" if last_error is not None else ""
            more = f"; {context()}" if context else ""
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}{detail}{more}")
        time.sleep(interval)


# --------------------------------------------------------------------------- servers and names

def start_rig(buckets=(), **kw):
    """A started Rig(**kw) with buckets, (name, user, endpoint_index) triples, made; the rig is
    closed again if any step fails, so that a failed setUpModule leaves no server behind."""
    rig = Rig(**kw)
    try:
        rig.start()
        for name, user, index in buckets:
            rig.ceph.make_bucket(name, user=user, endpoint_index=index)
    except BaseException:
        rig.close()
        raise
    return rig


def close_all(*things):
    """For tearDownModule: closes each server (anything with close()) and removes each directory
    (a str), in order; None (a setUpModule that failed early) is skipped."""
    for thing in things:
        if isinstance(thing, str):
            shutil.rmtree(thing, ignore_errors=True)
        elif thing is not None:
            thing.close()


def require_built(path, env_name):
    """Skips the module when a test binary is missing (a build without -Dtests=true)."""
    if not os.access(path, os.X_OK):
        raise unittest.SkipTest(f"{os.path.basename(path)} not built at {path} (set {env_name})")


_names = [0]
_names_lock = threading.Lock()


def unique_name(stem):
    """stem-N, N counting up across the process (bucket names for tests that run in threads)."""
    with _names_lock:
        _names[0] += 1
        return f"{stem}-{_names[0]}"


# --------------------------------------------------------------------------- processes

def run_cli(*args, env=None, timeout=30, binary=None):
    """Runs a short archie command and returns the CompletedProcess (text mode)."""
    full_env = dict(os.environ)
    full_env.pop("ARCHIE_CONFIG", None)
    full_env.update(env or {})
    return subprocess.run([binary or ARCHIE_BIN, *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout)


def write_config(text, directory=None, path=None):
    """Writes text to path, or to a new temporary archie-*.toml; returns the path."""
    if path is None:
        fd, path = tempfile.mkstemp(prefix="archie-", suffix=".toml", dir=directory)
        os.close(fd)
    with open(path, "w") as f:
        f.write(text)
    return path


class LoggedProcess:
    """A child that writes one JSON object per stderr line (archie's log format): every line is
    kept in memory for the test and, raw, in raw_log_path (sanitizer reports are not JSON)."""

    log_timeout = 30  # seconds wait_for_log waits by default
    stop_timeout = 30  # seconds from SIGTERM to SIGKILL in stop()

    def __init__(self, argv, env=None, raw_log_path=None, name="archie"):
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.name = name
        self.started = time.time()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=full_env)
        self.raw_log_path = raw_log_path or os.path.join(tempfile.gettempdir(), f"{name}-{self.proc.pid}.stderr")
        self.lines = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        with open(self.raw_log_path, "w") as raw_log:
            for raw in self.proc.stderr:
                raw_log.write(raw)
                raw_log.flush()
                try:
                    entry = json.loads(raw)
                except ValueError:
                    entry = {"msg": "(not json)", "raw": raw}
                with self._lock:
                    self.lines.append(entry)

    def logs(self, msg=None, **fields):
        """Every log entry so far, or those with this msg and these field values."""
        with self._lock:
            lines = list(self.lines)
        if msg is None:
            return lines
        return [e for e in lines if e.get("msg") == msg and all(e.get(k) == v for k, v in fields.items())]

    def logged(self, msg, **fields):
        return bool(self.logs(msg, **fields))

    def tail(self, n=25):
        return "\n".join(json.dumps(e) for e in self.logs()[-n:])

    def wait_for_log(self, msg, timeout=None, **fields):
        """The first entry with msg and fields; AssertionError once the timeout passes or the
        process has exited without writing it."""
        deadline = time.monotonic() + (self.log_timeout if timeout is None else timeout)
        while time.monotonic() < deadline:
            found = self.logs(msg, **fields)
            if found:
                return found[0]
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"{self.name} never logged {msg!r} {fields} (rc={self.proc.poll()}); last logs:\n"
                             f"{self.tail()}\nfull stderr: {self.raw_log_path}")

    def admin_port(self):
        """The admin HTTP server's port, as archie logged it (works with port = 0)."""
        return self.wait_for_log("admin server listening")["port"]

    def metrics_text(self):
        status, _, body = http_get(f"http://127.0.0.1:{self.admin_port()}/metrics", timeout=5)
        assert status == 200, status
        return body.decode()

    def metrics(self):
        """[(name, labels, value)] scraped from /metrics now."""
        return parse_metrics(self.metrics_text())

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        """SIGKILL (no drain, no cleanup); the time of the kill."""
        self.proc.kill()
        self.proc.wait()
        return time.time()

    def wait(self, timeout=60):
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stderr:
            self.proc.stderr.close()


class ArchieProcess(LoggedProcess):
    """`archie run` in the background on config_text (written to config_path, or to a
    temporary file removed by stop())."""

    def __init__(self, config_text, env=None, extra_args=(), binary=None, config_path=None, raw_log_path=None):
        self._own_config = config_path is None
        self.config_path = write_config(config_text, path=config_path)
        super().__init__([binary or ARCHIE_BIN, "run", "--config", self.config_path, *extra_args], env=env,
                         raw_log_path=raw_log_path)

    def wait_ready(self, timeout=60):
        """Blocks until archie consumes from JetStream."""
        return self.wait_for_log("consuming", timeout=timeout)

    def stop(self):
        super().stop()
        if self._own_config and os.path.exists(self.config_path):
            os.unlink(self.config_path)


# --------------------------------------------------------------------------- HTTP and metrics

def http_get(url, method="GET", timeout=10):
    """Returns (status, headers, body bytes) without raising on HTTP errors."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def http_json(url, timeout=10):
    """(status, decoded JSON body) of a GET."""
    status, _, body = http_get(url, timeout=timeout)
    return status, json.loads(body)


def parse_metrics(text):
    """[(name, labels dict, value)] from the Prometheus text format."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def scrape(port):
    """[(name, labels, value)] of the admin server on 127.0.0.1:port."""
    _, _, body = http_get(f"http://127.0.0.1:{port}/metrics")
    return parse_metrics(body.decode())


def metric(samples, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in labels.items()))


# --------------------------------------------------------------------------- archie.toml

class Inline(dict):
    """A table written inline ({ a = 1, b = "x" }), as CONFIGURE.md writes a route's source."""


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a TOML basic string for every key used here
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, Inline):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {v!r}")


def _is_table(v):
    return isinstance(v, dict) and not isinstance(v, Inline)


def _is_table_array(v):
    return isinstance(v, list) and v and all(_is_table(x) for x in v)


def to_toml(doc, prefix=""):
    """Nested dicts -> TOML text: a dict is a [table], a list of dicts an [[array of tables]],
    an Inline an inline table; keys whose value is None are left out."""
    out = []
    for name, table in doc.items():
        full = prefix + name
        for t in table if isinstance(table, list) else [table]:
            children = {k: v for k, v in t.items() if _is_table(v) or _is_table_array(v)}
            keys = [f"{k} = {toml_value(v)}" for k, v in t.items() if v is not None and k not in children]
            if keys or not children or isinstance(table, list):  # [a] is implied by [a.b]
                out.append(f"[[{full}]]" if isinstance(table, list) else f"[{full}]")
                out.extend(keys)
                out.append("")
            if children:
                out.append(to_toml(children, full + "."))
    return "\n".join(out)


def s3_store(endpoint, access_key_id, secret=None, secret_env=None, **extra):
    """[stores.X] of an S3 store; the secret inline, or named by the environment variable."""
    store = {"type": "s3", "endpoint": endpoint, "access_key_id": access_key_id}
    if secret_env:
        store["secret_access_key_env"] = secret_env
    else:
        store["secret_access_key"] = secret
    store.update(extra)
    return store


def rgw_store(rig, user="archie", endpoint_index=0, endpoint=None, secret_env=None, **extra):
    """An S3 store of the rig's Ceph as `user`; endpoint replaces the RGW's URL (a proxy)."""
    access, secret = rig.ceph.users[user]
    return s3_store(endpoint or rig.ceph.endpoints[endpoint_index], access, secret, secret_env, **extra)


def fs_store(root, **extra):
    return dict({"type": "fs", "root": root}, **extra)


def gcs_store(gcs, **extra):
    """A GCS store of the GCS test server, with its service-account key (the JWT flow)."""
    return dict({"type": "gcs", "endpoint": gcs.endpoint, "credentials": "service_account",
                 "service_account_file": gcs.sa_key_path}, **extra)


def route(store, bucket, destinations, **extra):
    """A [[route]] from store/bucket to (store, bucket) pairs; extra: exclude_copy, prefix..."""
    r = {"source": Inline(store=store, bucket=bucket)}
    r.update(extra)
    r["destinations"] = [{"store": s, "bucket": b} for s, b in destinations]
    return r


def queue_section(subjects=(EVENT_SUBJECT,), stream=None, durable=None, ack_wait=None, dead_letter_subject=None,
                  fetch_expires="1s", nak_backoff=None, stream_extra=None, consumer_extra=None, **extra):
    """[queue] with its stream, consumer and nak_backoff tables; None leaves a key to archie's default."""
    q = {"dead_letter_subject": dead_letter_subject, "fetch_expires": fetch_expires}
    q.update(extra)
    q["stream"] = dict({"name": stream, "subjects": list(subjects)}, **(stream_extra or {}))
    consumer = dict({"durable": durable, "ack_wait": ack_wait}, **(consumer_extra or {}))
    if any(v is not None for v in consumer.values()):
        q["consumer"] = consumer
    if nak_backoff:
        q["nak_backoff"] = dict(nak_backoff)
    return q


def archie_config(nats_urls, http_port=None, log_level=None, concurrency=None, shutdown_wait=None, queue=None,
                  replication=None, stores=None, routes=(), extra="", message_timeout=None):
    """archie.toml text: the admin server on 127.0.0.1:http_port (None: a free port; 0: the
    kernel picks, see LoggedProcess.admin_port), [worker], [nats], then the given sections."""
    doc = {}
    if log_level:
        doc["log"] = {"level": log_level}
    doc["http"] = {"address": "127.0.0.1", "port": free_port() if http_port is None else http_port}
    if concurrency is not None or shutdown_wait is not None or message_timeout is not None:
        doc["worker"] = {"concurrency": concurrency, "shutdown_wait": shutdown_wait,
                         "message_timeout": message_timeout}
    doc["nats"] = {"urls": list(nats_urls)}
    if queue:
        doc["queue"] = queue
    if replication:
        doc["replication"] = replication
    if stores:
        doc["stores"] = stores
    if routes:
        doc["route"] = list(routes)
    return to_toml(doc) + extra


def rgw_to_rgw_buckets(rig, src_bucket, dst_bucket):
    """The buckets of rgw_to_rgw_config: the source as "archie" on RGW 0, the destination as
    "other" on RGW 1."""
    rig.ceph.make_bucket(src_bucket, user="archie", endpoint_index=0)
    rig.ceph.make_bucket(dst_bucket, user="other", endpoint_index=1)


def rgw_to_rgw_config(rig, http_port, src_bucket, dst_bucket):
    """The smallest real replication of the rig: one route from src_bucket to dst_bucket, other
    credentials on the other endpoint, so every object streams through archie's part buffers.
    For tests that watch archie replicate from outside (the container image, the dashboard)."""
    return archie_config([rig.nats.url], http_port=http_port, concurrency=4, shutdown_wait="5s",
                         queue=queue_section(), replication={"buffer_budget_mib": 32},
                         stores={"src": rgw_store(rig, "archie", 0), "dst": rgw_store(rig, "other", 1)},
                         routes=[route("src", src_bucket, [("dst", dst_bucket)])])


# --------------------------------------------------------------------------- MinIO events

def query_escape(key):
    # Go's QueryEscape: A-Za-z0-9 and -_.~ literal, space as '+', every other byte %XX.
    return urllib.parse.quote_plus(key, safe="-_.~")


def minio_event(event_name, bucket, key, size=None, etag=None, content_type=None, user_agent="MinIO (linux; amd64)",
                host="10.0.0.7", internal=None):
    """A bucket-event message exactly as MinIO's NATS target publishes it (see
    tests/fixtures/events/README.md): {"EventName", "Key": "<bucket>/<raw key>", "Records": [...]}
    with s3.object.key in Go's url.QueryEscape form. internal: an event of MinIO's own (the
    lifecycle scanner: no requester, no request id); by default when the agent says Internal."""
    if internal is None:
        internal = "Internal" in user_agent or "Internal" in host
    obj = {"key": query_escape(key), "sequencer": "18E91EFD63285400"}
    if size is not None:
        obj["size"] = size
    if etag is not None:
        obj["eTag"] = etag
    if content_type is not None:
        obj["contentType"] = content_type
    record = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "awsRegion": "",
        "eventTime": "2026-11-18T11:06:40.122Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "" if internal else "minioadmin"},
        "requestParameters": None if internal else {"principalId": "minioadmin"},
        "responseElements": {"x-amz-request-id": "" if internal else "1706608B01AD5BB8"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "minioadmin"}, "arn": "arn:aws:s3:::" + bucket},
            "object": obj,
        },
        "source": {"host": host, "port": "", "userAgent": user_agent},
    }
    return json.dumps({"EventName": event_name, "Key": bucket + "/" + key, "Records": [record]},
                      separators=(",", ":")).encode()


def publish_event(nats, event_name, bucket, key, subject=EVENT_SUBJECT, **fields):
    """Publishes minio_event(...) to the JetStream subject with a NatsClient; the PubAck."""
    return nats.js_publish(subject, minio_event(event_name, bucket, key, **fields))


# --------------------------------------------------------------------------- S3 through the rig's signer

class RgwUser:
    """One rig user on one RGW endpoint (or a proxy in front of it), through the rig's own SigV4
    signer: a reference client that does not share code with archie's."""

    def __init__(self, rig, user="archie", endpoint_index=0, endpoint=None):
        self.access, self.secret = rig.ceph.users[user]
        self.endpoint = endpoint or rig.ceph.endpoints[endpoint_index]

    def request(self, method, bucket, key="", **kw):
        """(status, headers with lower-case names, body) of one signed request."""
        return s3_request(self.endpoint, method, f"/{bucket}/{key}" if key else f"/{bucket}", self.access,
                          self.secret, **kw)

    def put(self, bucket, key, body, content_type=None, metadata=None):
        """PutObject; the ETag without quotes."""
        headers = {f"x-amz-meta-{k}": v for k, v in (metadata or {}).items()}
        if content_type:
            headers["content-type"] = content_type
        status, h, answer = self.request("PUT", bucket, key, body=body, headers=headers)
        assert status == 200, (status, answer[:300])
        return h.get("etag", "").strip('"')

    def get(self, bucket, key):
        return self.request("GET", bucket, key)

    def head(self, bucket, key):
        return self.request("HEAD", bucket, key)

    def delete(self, bucket, key):
        status, _, body = self.request("DELETE", bucket, key)
        assert status in (200, 204), (status, body[:300])
        return status

    def list_keys(self, bucket, prefix="", page_size=1000):
        """Every key under prefix (ListObjectsV2, page_size keys a page, every page)."""
        keys, token = [], None
        while True:
            query = {"list-type": "2", "prefix": prefix, "max-keys": str(page_size)}
            if token:
                query["continuation-token"] = token
            status, _, body = self.request("GET", bucket, query=query)
            assert status == 200, (status, body[:300])
            page = ElementTree.fromstring(body)
            keys += [k.text or "" for k in page.findall("{*}Contents/{*}Key")]
            token = page.findtext("{*}NextContinuationToken")
            if not token:
                return keys


# --------------------------------------------------------------------------- archie's own clients (probes)

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


# --------------------------------------------------------------------------- files

def write_random(path, size, chunk=16 * MiB):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, chunk)
            f.write(os.urandom(n))
            left -= n
    return path


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 * MiB), b""):
            h.update(block)
    return h.hexdigest()


def rss_kib(pid):
    """VmRSS of a live process, KiB (FileNotFoundError once it has gone; 0 for a zombie)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

