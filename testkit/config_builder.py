"""archie.toml text from a few parameters: TOML from nested dicts (to_toml), store, route and
queue builders, the whole config (archie_config) and the smallest RGW-to-RGW replication of
the rig (rgw_to_rgw_config)."""
import json

from testkit.events import EVENT_SUBJECT
from testkit.net import free_port


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
