"""Bucket events exactly as MinIO's NATS target publishes them (minio_event), and publishing
them to JetStream (publish_event)."""
import json
import urllib.parse

EVENT_SUBJECT = "minio.events"


def query_escape(key):
    # Go's QueryEscape: A-Za-z0-9 and -_.~ literal, space as '+', every other byte %XX.
    return urllib.parse.quote_plus(key, safe="-_.~")


def minio_event(event_name, bucket, key, size=None, etag=None, content_type=None, user_agent="MinIO (linux; amd64)",
                host="10.0.0.7", internal=None, version_id=None):
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
    if version_id is not None:
        obj["versionId"] = version_id
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
