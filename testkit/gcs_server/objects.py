"""Objects: the object resource; get and download, list, delete, patch, compose, metadata-only
insert (?generation= and versions=true reach noncurrent generations too: versions.py); and
making a new object live, which every upload path shares. Mixed into the Handler."""

import base64
import bisect
import email.utils
import hashlib
import json
import re
import time
import urllib.parse

from .checksums import Crc32c
from .errors import (ApiError, bad_request, not_found_bucket, not_found_object, precondition_failed,
                     range_not_satisfiable)
from .formats import b64url_decode, b64url_encode, object_etag, rfc3339
from .limits import IO_BLOCK, LIST_MAX, MAX_COMPOSE_SOURCES
from .naming import validate_object_name
from .preconditions import check_preconditions
from .request_body import parse_json
from .store import WRITABLE_META, ObjectSpec, StoredObject, unlink_quietly
from .versions import destroy, every_generation, find_generation, requested_generation, retire


class ObjectRoutes:
    """The object resource and its requests."""

    def object_resource(self, o):
        base = self.base_url()
        qn = urllib.parse.quote(o.name, safe="")
        r = {
            "kind": "storage#object",
            "id": "%s/%s/%d" % (o.bucket, o.name, o.generation),
            "selfLink": "%s/storage/v1/b/%s/o/%s" % (base, o.bucket, qn),
            "mediaLink": "%s/download/storage/v1/b/%s/o/%s?generation=%d&alt=media" % (base, o.bucket, qn, o.generation),
            "name": o.name,
            "bucket": o.bucket,
            "generation": str(o.generation),
            "metageneration": str(o.metageneration),
            "contentType": o.content_type,
            "storageClass": o.storage_class or "STANDARD",
            "size": str(o.size),
        }
        if o.kms_key_name:
            r["kmsKeyName"] = o.kms_key_name + "/cryptoKeyVersions/1"  # the key version that encrypted it
        if o.md5 is not None:
            r["md5Hash"] = o.md5
        r["crc32c"] = o.crc32c
        if o.component_count is not None:
            r["componentCount"] = o.component_count
        r["etag"] = object_etag(o.generation, o.metageneration)
        for json_name, attr in WRITABLE_META.items():
            if json_name == "contentType":
                continue
            v = getattr(o, attr)
            if v is not None:
                r[json_name] = v
        if o.metadata:
            r["metadata"] = dict(o.metadata)
        r["timeCreated"] = rfc3339(o.created)
        r["updated"] = rfc3339(o.updated)
        r["timeStorageClassUpdated"] = rfc3339(o.created)
        r["timeFinalized"] = rfc3339(o.created)
        if o.time_deleted is not None:
            r["timeDeleted"] = rfc3339(o.time_deleted)   # a noncurrent generation
        return r

    # --- objects: read, list, delete, patch

    def _requested_object(self, bucket, bucket_name, name):
        """The generation ?generation= names (live or noncurrent), else the live object; 404
        if there is none. The caller holds the store lock."""
        gen = requested_generation(self.q)
        o = bucket.objects.get(name) if gen is None else find_generation(bucket, name, gen)
        if o is None:
            raise not_found_object(bucket_name, name)
        return o

    def _object_get(self, bucket_name, name, media):
        rule = self._fault("object.download" if media else "object.get", bucket_name, name)
        perm = "storage.objects.get"
        tok = self._authenticate(perm)
        b = self._bucket_for(bucket_name, perm, tok)
        with self.store.lock:
            o = self._requested_object(b, bucket_name, name)
            check_preconditions(o, self.q, for_read=True)
            f = open(o.path, "rb") if media else None
        if not media:
            return self._send_resource(self.object_resource(o))
        with f:
            self._send_media(o, f, rule)

    def _send_media(self, o, f, rule):
        size = o.size
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        hdrs = []
        if rng:
            m = re.match(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", rng)
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = int(m.group(2)) if m.group(2) else size - 1
                    end = min(end, size - 1)
                    if start >= size or end < start:
                        if not (size == 0 and start == 0):
                            raise range_not_satisfiable(size)
                        end = -1
                else:
                    n = int(m.group(2))
                    if n == 0:
                        raise range_not_satisfiable(size)
                    start = max(0, size - n)
                if size > 0:
                    status = 206
                    hdrs.append(("Content-Range", "bytes %d-%d/%d" % (start, end, size)))
        length = max(0, end - start + 1)
        hash_value = "crc32c=%s" % o.crc32c + (",md5=%s" % o.md5 if o.md5 else "")
        hdrs += [
            ("Content-Type", o.content_type),
            ("Content-Length", str(length)),
            ("Accept-Ranges", "bytes"),
            ("ETag", '"%s"' % object_etag(o.generation, o.metageneration)),
            ("Last-Modified", email.utils.formatdate(o.updated, usegmt=True)),
            ("X-Goog-Generation", str(o.generation)),
            ("X-Goog-Metageneration", str(o.metageneration)),
            ("X-Goog-Hash", hash_value),
            ("X-Goog-Stored-Content-Length", str(size)),
            ("X-Goog-Stored-Content-Encoding", o.content_encoding or "identity"),
            ("X-Goog-Storage-Class", "STANDARD"),
            ("Cache-Control", o.cache_control or "no-cache, no-store, max-age=0, must-revalidate"),
        ]
        if o.content_encoding:
            hdrs.append(("Content-Encoding", o.content_encoding))
        if o.content_disposition:
            hdrs.append(("Content-Disposition", o.content_disposition))
        if o.content_language:
            hdrs.append(("Content-Language", o.content_language))
        if o.component_count is not None:
            hdrs.append(("X-Goog-Component-Count", str(o.component_count)))
        for k, v in o.metadata.items():
            hdrs.append(("X-Goog-Meta-" + k, v))
        self._settle_body()
        self.send_response(status)
        for k, v in hdrs:
            self.send_header(k, v)
        if self._must_close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD" or length == 0:
            return
        limit = length
        if rule and rule.get("action") == "drop":
            limit = min(length, int(rule.get("after_bytes") or 0))
        sent = 0
        while sent < limit:
            n = self.connection.sendfile(f, start + sent, limit - sent)
            if not n:
                break
            sent += n
        if limit < length:
            self._drop_connection()

    def _object_list(self, bucket_name):
        self._fault("object.list", bucket_name)
        tok = self._authenticate("storage.objects.list", "bucket")
        b = self._bucket_for(bucket_name, "storage.objects.list", tok, "bucket")
        q = self.q
        versions = q.get("versions", "false").lower() == "true"
        prefix = q.get("prefix", "")
        delim = q.get("delimiter", "")
        start_off = q.get("startOffset")
        end_off = q.get("endOffset")
        trailing = q.get("includeTrailingDelimiter", "false").lower() == "true"
        try:
            max_results = int(q.get("maxResults", LIST_MAX))
        except ValueError:
            raise bad_request("Invalid value for maxResults: %s" % q.get("maxResults"))
        if max_results < 0:
            raise bad_request("Invalid value for maxResults: %s" % q.get("maxResults"))
        if max_results == 0 or max_results > LIST_MAX:
            max_results = LIST_MAX
        cursor, cursor_generation, skip_prefix = None, None, None
        if q.get("pageToken"):
            try:
                tokdoc = json.loads(b64url_decode(q["pageToken"]))
                cursor = tokdoc.get("after")
                cursor_generation = tokdoc.get("generation")
                skip_prefix = tokdoc.get("skip")
                if cursor_generation is not None and not isinstance(cursor_generation, int):
                    raise ValueError("generation")
            except (ValueError, AttributeError):
                raise bad_request("Invalid page token.", "invalidParameter")
        with self.store.lock:
            objs = every_generation(b) if versions else list(b.objects.values())
        # Keys are (name as UTF-8, generation): by name, then generation ascending. A bare
        # (name,) sorts before every generation of that name, which the bisects below use.
        entries = sorted((((o.name.encode("utf-8", "surrogatepass"), o.generation), o) for o in objs),
                         key=lambda e: e[0])
        keys = [k for k, _ in entries]
        p = prefix.encode("utf-8", "surrogatepass")
        d = delim.encode("utf-8", "surrogatepass")
        i = bisect.bisect_left(keys, (p,))
        if start_off:
            i = max(i, bisect.bisect_left(keys, (start_off.encode("utf-8", "surrogatepass"),)))
        if skip_prefix is not None:
            i = max(i, bisect.bisect_left(keys, (skip_prefix.encode("utf-8", "surrogatepass") + b"\xff",)))
        elif cursor is not None:
            # A token without a generation resumes after every generation of that name.
            after = (cursor.encode("utf-8", "surrogatepass"),
                     float("inf") if cursor_generation is None else cursor_generation)
            i = max(i, bisect.bisect_right(keys, after))
        end_key = end_off.encode("utf-8", "surrogatepass") if end_off else None
        items, prefixes = [], []
        last = None
        n = len(keys)

        def in_range(j):
            return j < n and keys[j][0].startswith(p) and (end_key is None or keys[j][0] < end_key)

        while in_range(i) and len(items) + len(prefixes) < max_results:
            (k, gen), o = entries[i]
            rest = k[len(p):]
            cut = rest.find(d) if d else -1
            if cut >= 0:
                pre = p + rest[:cut + len(d)]
                prefixes.append(pre.decode("utf-8", "surrogatepass"))
                after_prefix = bisect.bisect_left(keys, (pre + b"\xff",))
                if trailing:
                    # The object named exactly the prefix (each of its generations) sorts first.
                    j = i
                    while j < after_prefix and keys[j][0] == pre:
                        items.append(entries[j][1])
                        j += 1
                last = ("skip", pre)
                i = after_prefix
            else:
                items.append(o)
                last = ("after", k, gen)
                i += 1
        out = {"kind": "storage#objects"}
        if in_range(i) and last is not None:
            token = {last[0]: last[1].decode("utf-8", "surrogatepass")}
            if last[0] == "after" and versions:
                # Generations of one name may span pages. Without versions=true the token
                # names no generation, so a name overwritten between pages is not listed twice.
                token["generation"] = last[2]
            out["nextPageToken"] = b64url_encode(json.dumps(token).encode())
        if prefixes:
            out["prefixes"] = prefixes
        if items:
            out["items"] = [self.object_resource(o) for o in items]
        self._send_resource(out)

    def _object_delete(self, bucket_name, name):
        self._fault("object.delete", bucket_name, name)
        tok = self._authenticate("storage.objects.delete")
        b = self._bucket_for(bucket_name, "storage.objects.delete", tok)
        with self.store.lock:
            o = self._requested_object(b, bucket_name, name)
            check_preconditions(o, self.q)
            if "generation" in self.q:
                destroy(b, o)   # named by its generation: gone for good, even the live one
            else:
                del b.objects[name]
                retire(b, o)
        self._send(204)

    def _object_patch(self, bucket_name, name):
        self._fault("object.patch", bucket_name, name)
        tok = self._authenticate("storage.objects.update")
        b = self._bucket_for(bucket_name, "storage.objects.update", tok)
        doc = parse_json(self.body.read_all())
        if not isinstance(doc, dict):
            raise bad_request("Parse Error", "parseError")
        with self.store.lock:
            o = self._requested_object(b, bucket_name, name)
            check_preconditions(o, self.q)
            for json_name, attr in WRITABLE_META.items():
                if json_name in doc:
                    v = doc[json_name]
                    if json_name == "contentType" and not v:
                        v = "application/octet-stream"
                    setattr(o, attr, v)
            if "metadata" in doc:
                md = doc["metadata"]
                if md is None:
                    o.metadata = {}
                elif isinstance(md, dict):
                    for k, v in md.items():
                        if v is None:
                            o.metadata.pop(k, None)
                        else:
                            o.metadata[str(k)] = str(v)
            o.metageneration += 1
            o.updated = time.time()
            res = self.object_resource(o)
        self._send_resource(res)

    # --- object creation (shared by every upload path)

    def _commit_object(self, bucket, spec, path, size, md5_b64, crc_b64, q, component_count=None):
        """Makes the file at path the live object; checks preconditions atomically."""
        o = StoredObject()
        o.bucket = bucket.name
        o.name = spec.name
        o.size = size
        o.md5 = md5_b64
        o.crc32c = crc_b64
        o.path = path
        o.component_count = component_count
        for json_name, attr in WRITABLE_META.items():
            if json_name in spec.fields:
                setattr(o, attr, spec.fields[json_name])
        if not o.content_type:
            o.content_type = "application/octet-stream"
        o.metadata = dict(spec.metadata)
        o.storage_class = spec.storage_class or bucket.storage_class
        o.kms_key_name = spec.kms_key_name
        with self.store.lock:
            if self.store.buckets.get(bucket.name) is not bucket:
                unlink_quietly(path)
                raise not_found_bucket()
            old = bucket.objects.get(spec.name)
            try:
                check_preconditions(old, q)
            except ApiError:
                unlink_quietly(path)
                raise
            o.generation = self.store.next_generation()
            o.created = o.updated = time.time()
            bucket.objects[spec.name] = o
            if old is not None:
                retire(bucket, old)
        return o

    def _stream_to_file(self, chunks, path):
        md5 = hashlib.md5()
        crc = Crc32c()
        size = 0
        with open(path, "wb") as f:
            for data in chunks:
                f.write(data)
                md5.update(data)
                crc.update(data)
                size += len(data)
        return size, base64.b64encode(md5.digest()).decode(), crc.b64()

    # --- objects.insert on the metadata path: an empty object

    def _object_insert_metadata_only(self, bucket_name):
        self._fault("upload.metadata", bucket_name)
        tok = self._authenticate("storage.objects.create")
        b = self._bucket_for(bucket_name, "storage.objects.create", tok)
        doc = parse_json(self.body.read_all())
        spec = ObjectSpec.from_json(doc)
        if self.q.get("name"):
            spec.name = self.q["name"]
        validate_object_name(spec.name)
        path = self.store.new_path("tmp")
        size, md5_b64, crc_b64 = self._stream_to_file([], path)
        o = self._commit_object(b, spec, path, size, md5_b64, crc_b64, self.q)
        self._send_resource(self.object_resource(o))

    # --- compose

    def _compose(self, bucket_name, dest_name):
        self._fault("object.compose", bucket_name, dest_name)
        tok = self._authenticate("storage.objects.create")
        b = self._bucket_for(bucket_name, "storage.objects.create", tok)
        validate_object_name(dest_name)
        doc = parse_json(self.body.read_all())
        sources = doc.get("sourceObjects") if isinstance(doc, dict) else None
        if not sources:
            raise ApiError(400, "required", "Required")
        if len(sources) > MAX_COMPOSE_SOURCES:
            raise bad_request("The number of source components provided (%d) exceeds the maximum (%d)"
                              % (len(sources), MAX_COMPOSE_SOURCES))
        spec = ObjectSpec.from_json(doc.get("destination") or {})
        spec.name = dest_name
        handles = []
        count = 0
        try:
            with self.store.lock:
                for s in sources:
                    # A source's generation may name a noncurrent generation too.
                    gen = requested_generation(s)
                    o = b.objects.get(s.get("name")) if gen is None else find_generation(b, s.get("name"), gen)
                    if o is None:
                        raise not_found_object(bucket_name, s.get("name"))
                    pre = (s.get("objectPreconditions") or {}).get("ifGenerationMatch")
                    if pre is not None and str(pre) != str(o.generation):
                        raise precondition_failed()
                    handles.append(open(o.path, "rb"))
                    count += o.component_count or 1
                check_preconditions(b.objects.get(dest_name), self.q)

            def chunks():
                for fh in handles:
                    while True:
                        d = fh.read(IO_BLOCK)
                        if not d:
                            break
                        yield d

            path = self.store.new_path("tmp")
            try:
                # md5Hash/crc32c in the destination resource are not checked: gcloud copies them
                # from the first component into the compose request, and Cloud Storage accepts that.
                size, _md5, crc_b64 = self._stream_to_file(chunks(), path)
                o = self._commit_object(b, spec, path, size, None, crc_b64, self.q, component_count=count)
            except BaseException:
                unlink_quietly(path)
                raise
        finally:
            for fh in handles:
                fh.close()
        self._send_resource(self.object_resource(o))
