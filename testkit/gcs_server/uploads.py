"""Single-request uploads: uploadType=media and multipart. Mixed into the Handler."""

import re
import secrets

from .checksums import parse_goog_hash, verify_hashes
from .errors import ApiError, ClientGone, bad_request, fault_error
from .limits import DRAIN_LIMIT, IO_BLOCK
from .naming import validate_object_name
from .preconditions import check_preconditions
from .request_body import MultipartReader, parse_json
from .store import ObjectSpec, unlink_quietly


class UploadRoutes:
    """POST /upload/storage/v1/b/{bucket}/o: media and multipart uploads (resumable ones are
    initiated here too and go on in ResumableUploads)."""

    def _upload_post(self, bucket_name):
        ut = self.q.get("uploadType")
        if ut is None:
            if "upload_id" in self.q:
                return self._upload_put(bucket_name)
            raise ApiError(400, "required", "Required parameter: uploadType")
        if ut == "resumable":
            return self._resumable_initiate(bucket_name)
        if ut == "media":
            return self._simple_upload(bucket_name)
        if ut == "multipart":
            return self._multipart_upload(bucket_name)
        raise bad_request("Invalid upload type: %s" % ut, "invalidParameter")

    def _simple_upload(self, bucket_name):
        rule = self._fault("upload.media", bucket_name, self.q.get("name"))
        tok = self._authenticate("storage.objects.create")
        b = self._bucket_for(bucket_name, "storage.objects.create", tok)
        spec = ObjectSpec()
        spec.name = self.q.get("name")
        spec.kms_key_name = self.q.get("kmsKeyName")
        validate_object_name(spec.name)
        ct = self.headers.get("Content-Type")
        if ct:
            spec.fields["contentType"] = ct
        if self.q.get("contentEncoding"):
            spec.fields["contentEncoding"] = self.q["contentEncoding"]
        with self.store.lock:
            check_preconditions(b.objects.get(spec.name), self.q)
        path = self.store.new_path("tmp")
        try:
            size, md5_b64, crc_b64 = self._stream_to_file(self._body_chunks(rule), path)
            gh = parse_goog_hash(self.headers.get_all("X-Goog-Hash"))
            verify_hashes(gh.get("md5"), gh.get("crc32c"), md5_b64, crc_b64)
            o = self._commit_object(b, spec, path, size, md5_b64, crc_b64, self.q)
        except BaseException:
            unlink_quietly(path)
            raise
        self._answer_upload(o, rule)

    def _multipart_upload(self, bucket_name):
        rule = self._fault("upload.multipart", bucket_name, self.q.get("name"))
        tok = self._authenticate("storage.objects.create")
        b = self._bucket_for(bucket_name, "storage.objects.create", tok)
        ctype = self.headers.get("Content-Type") or ""
        # apitools (gcloud) single-quotes the boundary; accept any of the three forms.
        m = re.search(r"""boundary\s*=\s*(?:"([^"]+)"|'([^']+)'|([^;\s]+))""", ctype, re.I)
        if not ctype.lower().startswith("multipart/") or not m:
            raise bad_request("Missing or invalid multipart Content-Type boundary.")
        boundary = (m.group(1) or m.group(2) or m.group(3)).encode("latin-1")
        reader = MultipartReader(self.body, boundary)
        h1 = reader.next_part()
        if h1 is None:
            raise bad_request("Malformed multipart body.")
        meta_raw = b"".join(reader.part_data())
        spec = ObjectSpec.from_json(parse_json(meta_raw))
        spec.take_query_name(self.q.get("name"))
        spec.kms_key_name = self.q.get("kmsKeyName")
        validate_object_name(spec.name)
        h2 = reader.next_part()
        if h2 is None:
            raise bad_request("Malformed multipart body: missing media part.")
        if "contentType" not in spec.fields and h2.get("content-type"):
            spec.fields["contentType"] = h2["content-type"]
        with self.store.lock:
            check_preconditions(b.objects.get(spec.name), self.q)
        path = self.store.new_path("tmp")
        try:
            size, md5_b64, crc_b64 = self._stream_to_file(self._limited(reader.part_data(), rule), path)
            if reader.next_part() is not None:
                raise bad_request("Malformed multipart body: unexpected third part.")
            reader.body.drain(DRAIN_LIMIT)
            gh = parse_goog_hash(self.headers.get_all("X-Goog-Hash"))
            verify_hashes(spec.md5 or gh.get("md5"), spec.crc32c or gh.get("crc32c"), md5_b64, crc_b64)
            o = self._commit_object(b, spec, path, size, md5_b64, crc_b64, self.q)
        except BaseException:
            unlink_quietly(path)
            raise
        self._answer_upload(o, rule)

    def _limited(self, gen, rule):
        if not rule or rule.get("action") != "drop":
            yield from gen
            return
        limit = int(rule.get("after_bytes") or 0)
        got = 0
        for d in gen:
            if got + len(d) >= limit:
                self._drop_connection()
            got += len(d)
            yield d
        self._drop_connection()

    def _body_chunks(self, rule=None):
        limit = None
        if rule and rule.get("action") == "drop":
            limit = int(rule.get("after_bytes") or 0)
        got = 0
        while True:
            if limit is not None and got >= limit:
                self._drop_connection()
            n = IO_BLOCK if limit is None else max(1, min(IO_BLOCK, limit - got))
            d = self.body.read(n)
            if not d:
                if self.body.broken:
                    raise ClientGone()
                if limit is not None:
                    self._drop_connection()
                return
            got += len(d)
            yield d

    def _answer_upload(self, o, rule, extra_headers=()):
        res = self.object_resource(o)
        hdrs = [("X-GUploader-UploadID", secrets.token_urlsafe(24))] + list(extra_headers)
        if rule and rule.get("action") == "status" and rule.get("commit"):
            raise fault_error(rule)
        self._send_resource(res, hdrs)
