"""Builds bucket-event messages exactly as MinIO's NATS target publishes them (see
tests/fixtures/events/README.md): {"EventName", "Key": "<bucket>/<raw key>", "Records": [...]}
with s3.object.key in Go's url.QueryEscape form."""
import json
import urllib.parse


def query_escape(key):
    # Go's QueryEscape: A-Za-z0-9 and -_.~ literal, space as '+', every other byte %XX.
    return urllib.parse.quote_plus(key, safe="-_.~")


def minio_event(event_name, bucket, key, size=None, etag=None, content_type=None, user_agent="MinIO (linux; amd64)",
                host="10.0.0.7"):
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
        "userIdentity": {"principalId": "minioadmin"},
        "requestParameters": None if "Internal" in user_agent else {"principalId": "minioadmin"},
        "responseElements": {},
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
