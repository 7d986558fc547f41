"""Resumable uploads: initiating a session, chunk PUTs (308 + Range, the 256 KiB rule),
status queries, cancel, and finalizing into an object. Mixed into the Handler."""

import base64
import re
import secrets
import urllib.parse

from .checksums import parse_goog_hash, verify_hashes
from .errors import ApiError, ClientGone, bad_request, fault_error, not_found_bucket
from .limits import IO_BLOCK, QUANTUM
from .naming import validate_object_name
from .preconditions import check_preconditions
from .request_body import parse_json
from .store import ObjectSpec, UploadSession, unlink_quietly


class ResumableUploads:
    """Resumable upload sessions; the session URI needs no credentials."""

    def _resumable_initiate(self, bucket_name):
        self._fault("upload.initiate", bucket_name, self.q.get("name"))
        tok = self._authenticate("storage.objects.create")
        b = self._bucket_for(bucket_name, "storage.objects.create", tok)
        raw = self.body.read_all()
        spec = ObjectSpec()
        if raw.strip():
            spec = ObjectSpec.from_json(parse_json(raw))
        spec.take_query_name(self.q.get("name"))
        spec.kms_key_name = self.q.get("kmsKeyName")
        validate_object_name(spec.name)
        if "contentType" not in spec.fields and self.headers.get("X-Upload-Content-Type"):
            spec.fields["contentType"] = self.headers["X-Upload-Content-Type"]
        declared = self.headers.get("X-Upload-Content-Length")
        if declared is not None:
            try:
                declared = int(declared)
                if declared < 0:
                    raise ValueError()
            except ValueError:
                raise bad_request("Invalid X-Upload-Content-Length header.")
        pre = {k: v for k, v in self.q.items()
               if k in ("ifGenerationMatch", "ifGenerationNotMatch", "ifMetagenerationMatch",
                        "ifMetagenerationNotMatch")}
        with self.store.lock:
            check_preconditions(b.objects.get(spec.name), pre)
        upload_id = "ADPyc" + secrets.token_urlsafe(48)
        path = self.store.new_path("uploads")
        open(path, "wb").close()
        sess = UploadSession(upload_id, bucket_name, spec, pre, declared, path, tok.principal)
        with self.store.lock:
            self.store.sessions[upload_id] = sess
        loc = "%s/upload/storage/v1/b/%s/o?uploadType=resumable&name=%s&upload_id=%s" % (
            self.base_url(), urllib.parse.quote(bucket_name, safe=""),
            urllib.parse.quote(spec.name, safe=""), upload_id)
        self._send(200, b"", None, [("Location", loc), ("X-GUploader-UploadID", upload_id)])

    def _session(self, bucket_name):
        upload_id = self.q.get("upload_id")
        if not upload_id:
            raise ApiError(400, "required", "Required parameter: upload_id")
        with self.store.lock:
            sess = self.store.sessions.get(upload_id)
        if sess is None or sess.bucket != bucket_name:
            raise ApiError(404, "notFound", "No such upload session: %s" % upload_id)
        return sess

    def _gone(self, sess):
        if sess.state == "cancelled":
            return ApiError(410, "gone", "The upload session has been cancelled. Start a new upload.")
        if sess.state == "expired":
            return ApiError(410, "gone", "The upload session has expired. Start a new upload.")
        return ApiError(410, "gone", "The upload session is no longer available (it ended with an error). "
                                     "Start a new upload.")

    def _upload_cancel(self, bucket_name):
        self._fault("upload.cancel", bucket_name)
        sess = self._session(bucket_name)
        with sess.lock:
            if sess.state == "complete":
                # Cancelling a finished upload does nothing to the object.
                return self._send_resource(sess.result)
            if sess.state != "active":
                raise self._gone(sess)
            sess.state = "cancelled"
            unlink_quietly(sess.path)
        self._send(499)

    def _status_308(self, sess, extra=()):
        hdrs = [("X-GUploader-UploadID", sess.upload_id)] + list(extra)
        if sess.committed > 0:
            hdrs.append(("Range", "bytes=0-%d" % (sess.committed - 1)))
        self._send(308, b"", None, hdrs)

    def _upload_put(self, bucket_name):
        sess = self._session(bucket_name)
        cr = self.headers.get("Content-Range")
        parsed = None
        if cr is not None:
            m = re.match(r"^\s*bytes\s+(?:(\*)|(\d+)-(\d+|\*))\s*/\s*(\d+|\*)\s*$", cr, re.I)
            if not m:
                raise bad_request("Failed to parse Content-Range header.")
            start = None if m.group(1) else int(m.group(2))
            end = None if (m.group(1) or m.group(3) == "*") else int(m.group(3))
            total = None if m.group(4) == "*" else int(m.group(4))
            parsed = (start, end, total)
        is_query = parsed is not None and parsed[0] is None
        kind = "upload.status" if is_query else "upload.chunk"
        rule = self._fault(kind, bucket_name, sess.spec.name, handle_status=False)
        acquired = sess.lock.acquire(timeout=self.timeout)
        if not acquired:
            raise ApiError(503, "backendError", "The upload session is busy.")
        try:
            self._upload_put_locked(sess, parsed, is_query, rule)
        finally:
            sess.lock.release()

    def _upload_put_locked(self, sess, parsed, is_query, rule):
        if sess.state == "complete":
            return self._send_resource(sess.result, [("X-GUploader-UploadID", sess.upload_id)])
        if sess.state != "active":
            raise self._gone(sess)
        if rule and rule.get("action") == "status" and not rule.get("commit"):
            raise fault_error(rule)
        if parsed is None:
            # No Content-Range: the body is the whole object.
            parsed = (0, None, None)
            whole = True
        else:
            whole = False
        start, end, total = parsed
        if total is not None:
            if sess.total is not None and total != sess.total:
                raise bad_request("Invalid request. The total object size %d in the Content-Range header differs "
                                  "from the size %d given earlier." % (total, sess.total))
            if sess.declared_length is not None and total != sess.declared_length:
                raise bad_request("Invalid request. The total object size %d in the Content-Range header does not "
                                  "match the X-Upload-Content-Length %d given when the upload started."
                                  % (total, sess.declared_length))
            if total < sess.committed:
                raise bad_request("Invalid request. The total object size %d is smaller than the %d byte(s) "
                                  "already uploaded." % (total, sess.committed))
        if is_query:
            if not self.body.drain(0):
                raise bad_request("Invalid request. A status query (Content-Range: bytes */...) must have an "
                                  "empty body.")
            if total is not None:
                sess.total = total
                if total == sess.committed:
                    return self._finalize(sess, rule)
            return self._status_308(sess)
        if end is not None and end < start:
            raise bad_request("Failed to parse Content-Range header.")
        if start > sess.committed:
            raise bad_request("Invalid request. The Content-Range header starts at offset %d, but only %d byte(s) "
                              "have been persisted; resend from offset %d." % (start, sess.committed, sess.committed))
        if end is not None and total is not None and end >= total:
            raise bad_request("Invalid request. The Content-Range header's last byte %d is beyond the total object "
                              "size %d." % (end, total))
        declared_len = (end - start + 1) if end is not None else None
        if declared_len is not None and self.body.length is not None and self.body.length != declared_len:
            raise bad_request("Invalid request.  There were %d byte(s) in the request body.  There should have "
                              "been %d byte(s) (starting at offset %d and ending at offset %d) according to the "
                              "Content-Range header." % (self.body.length, declared_len, start, end))
        final_known = whole or (end is not None and total is not None and end + 1 == total)
        if declared_len is not None and not final_known:
            if declared_len < QUANTUM:
                raise bad_request(
                    "Invalid request. The number of bytes uploaded is required to be equal or greater than 262144, "
                    "except for the final request (it's recommended to be the exact multiple of 262144). The "
                    "received request contained %d bytes, which does not meet this requirement." % declared_len)
            if declared_len % QUANTUM and self.store.chunk_policy == "reject":
                raise bad_request(
                    "Invalid request. The number of bytes uploaded is required to be a multiple of 262144, except "
                    "for the final request. The received request contained %d bytes, which does not meet this "
                    "requirement." % declared_len)
        self._receive_chunk(sess, start, end, total, whole, rule)

    def _receive_chunk(self, sess, start, end, total, whole, rule):
        snap = (sess.committed, sess.md5.copy(), sess.crc.copy())
        drop_after = None
        persist = "aligned"
        if rule and rule.get("action") == "drop":
            drop_after = int(rule.get("after_bytes") if rule.get("after_bytes") is not None else 0)
            persist = rule.get("persist", "aligned")
        sess.chunks += 1
        skip = sess.committed - start
        pending = bytearray()
        received = 0
        f = open(sess.path, "r+b")
        try:
            f.seek(sess.committed)
            outcome = None
            try:
                while True:
                    n = IO_BLOCK
                    if drop_after is not None:
                        n = max(1, min(IO_BLOCK, drop_after - received))
                    if drop_after is not None and received >= drop_after:
                        outcome = "drop"
                        break
                    d = self.body.read(n)
                    if not d:
                        if self.body.broken:
                            outcome = "gone"
                        break
                    received += len(d)
                    if skip > 0:
                        if len(d) <= skip:
                            skip -= len(d)
                            continue
                        d = d[skip:]
                        skip = 0
                    pending += d
                    if len(pending) >= QUANTUM:
                        k = len(pending) - len(pending) % QUANTUM
                        mv = memoryview(pending)[:k]
                        f.write(mv)
                        sess.md5.update(mv)
                        sess.crc.update(bytes(mv))
                        mv.release()
                        sess.committed += k
                        del pending[:k]
            except ClientGone:
                outcome = "gone"
            if outcome is None and drop_after is not None:
                outcome = "drop"
            if outcome is not None:
                # Connection lost mid-chunk: whole 256 KiB blocks received so far stay persisted
                # (as Cloud Storage may do), unless the fault asked for nothing to persist.
                if persist == "none":
                    sess.committed, sess.md5, sess.crc = snap
                f.truncate(sess.committed)
                f.close()
                if outcome == "drop":
                    self._drop_connection()
                raise ClientGone()
            body_len = received
            if end is not None and body_len != end - start + 1:
                sess.committed, sess.md5, sess.crc = snap
                f.truncate(sess.committed)
                raise bad_request("Invalid request.  There were %d byte(s) in the request body.  There should have "
                                  "been %d byte(s) (starting at offset %d and ending at offset %d) according to the "
                                  "Content-Range header." % (body_len, end - start + 1, start, end))
            last = start + body_len      # offset after the last byte of this request
            if whole:
                total = last
            if total is not None and last > total:
                sess.committed, sess.md5, sess.crc = snap
                f.truncate(sess.committed)
                raise bad_request("Invalid request. The request body extends beyond the total object size %d." % total)
            if total is not None and last == total:
                if pending:
                    f.write(pending)
                    sess.md5.update(pending)
                    sess.crc.update(bytes(pending))
                    sess.committed += len(pending)
                    pending = bytearray()
                f.truncate(sess.committed)
                f.close()
                sess.total = total
                return self._finalize(sess, rule)
            # Not final: only whole 256 KiB blocks are persisted; a ragged tail is dropped.
            f.truncate(sess.committed)
            if total is not None:
                sess.total = total
        finally:
            if not f.closed:
                f.close()
        if rule and rule.get("action") == "status" and rule.get("commit"):
            raise fault_error(rule)
        self._status_308(sess)

    def _finalize(self, sess, rule):
        md5_b64 = base64.b64encode(sess.md5.digest()).decode()
        crc_b64 = sess.crc.b64()
        gh = parse_goog_hash(self.headers.get_all("X-Goog-Hash"))
        try:
            verify_hashes(gh.get("md5") or sess.spec.md5, gh.get("crc32c") or sess.spec.crc32c, md5_b64, crc_b64)
            with self.store.lock:
                b = self.store.buckets.get(sess.bucket)
            if b is None:
                raise not_found_bucket()
            o = self._commit_object(b, sess.spec, sess.path, sess.committed, md5_b64, crc_b64, sess.preconditions)
        except ApiError:
            sess.state = "failed"
            unlink_quietly(sess.path)
            raise
        sess.state = "complete"
        sess.result = self.object_resource(o)
        if rule and rule.get("action") == "status" and rule.get("commit"):
            raise fault_error(rule)
        self._send_resource(sess.result, [("X-GUploader-UploadID", sess.upload_id)])
