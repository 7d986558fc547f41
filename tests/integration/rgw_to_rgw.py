"""The smallest real replication setup of the rig: one route from a bucket on RGW endpoint 0
(user "archie") to a bucket on RGW endpoint 1 (user "other"), so every object streams
through archie's part buffers. Used by the tests that need archie to replicate something
while they watch from outside (the container image, the dashboard)."""

SUBJECT = "minio.events"


def make_buckets(rig, src_bucket, dst_bucket):
    rig.ceph.make_bucket(src_bucket, user="archie", endpoint_index=0)
    rig.ceph.make_bucket(dst_bucket, user="other", endpoint_index=1)


def config(rig, http_port, src_bucket, dst_bucket):
    """archie.toml text: admin server on 127.0.0.1:http_port, stream on SUBJECT."""
    a_key, a_secret = rig.ceph.users["archie"]
    o_key, o_secret = rig.ceph.users["other"]
    return f"""
[http]
address = "127.0.0.1"
port = {http_port}
[worker]
concurrency = 4
shutdown_wait = "5s"
[nats]
urls = ["{rig.nats.url}"]
[queue]
fetch_expires = "1s"
[queue.stream]
subjects = ["{SUBJECT}"]
[replication]
buffer_budget_mib = 32
[stores.src]
type = "s3"
endpoint = "{rig.ceph.endpoints[0]}"
access_key_id = "{a_key}"
secret_access_key = "{a_secret}"
[stores.dst]
type = "s3"
endpoint = "{rig.ceph.endpoints[1]}"
access_key_id = "{o_key}"
secret_access_key = "{o_secret}"
[[route]]
source = {{ store = "src", bucket = "{src_bucket}" }}
[[route.destinations]]
store = "dst"
bucket = "{dst_bucket}"
"""
