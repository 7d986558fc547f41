"""A Google Cloud Storage JSON API test server for archie's GCS client tests.

Standard library only (Debian's /usr/bin/python3); object data lives in files under
--data-dir and is streamed, never held whole in memory, so objects of several GiB work.
Checked against Google's own clients by tests/integration/test_gcs_server_clients.py
(@google-cloud/storage for Node.js via tests/gcs/fidelity.mjs, and gcloud storage), and
directly by test_gcs_server_uploads.py, test_gcs_server_api.py and
test_gcs_server_versioning.py.

Endpoints (all on 127.0.0.1):

  JSON API     GET/POST /storage/v1/b (list needs ?project=, insert needs ?project= and {"name"},
                   and takes "versioning": {"enabled": true|false})
               GET/PATCH/DELETE /storage/v1/b/{bucket} (PATCH sets versioning, ignores other fields,
                   bumps the metageneration; ifMetagenerationMatch, ifMetagenerationNotMatch)
               GET /storage/v1/b/{bucket}/o   prefix, delimiter, pageToken, maxResults (items and
                   prefixes together, <= 1000), startOffset, endOffset, includeTrailingDelimiter,
                   versions=true (every generation, live and noncurrent, by name then generation
                   ascending; one name's generations may span pages)
               GET/PATCH/DELETE /storage/v1/b/{bucket}/o/{object}; GET ?alt=media downloads
                   (Range: bytes=a-b | a- | -n -> 206 + Content-Range; past the end -> 416);
                   ?generation=N names one generation, live or noncurrent (404 if there is none);
                   a DELETE with it removes that generation for good, the live one too
               POST /storage/v1/b/{bucket}/o/{object}/compose (sourceObjects[].generation may
                   name a noncurrent generation)
               GET /download/storage/v1/b/{bucket}/o/{object}?alt=media (the mediaLink form)
               Preconditions: ifGenerationMatch, ifGenerationNotMatch, ifMetagenerationMatch,
                   ifMetagenerationNotMatch (412 conditionNotMet; 304 for a failed *NotMatch on GET)
               fields= partial responses (e.g. items(name,size),nextPageToken)
  Versioning   In a bucket with versioning.enabled, an upload over the live object, or a DELETE of
               it without ?generation=, keeps it as a noncurrent generation: timeDeleted is set and
               its data file stays until that generation is deleted for good (or /_test/reset).
               Noncurrent generations are only seen through versions=true and ?generation=, and
               keep the bucket from being deleted. Without versioning both discard the old data.
  Uploads      POST /upload/storage/v1/b/{bucket}/o?uploadType=media|multipart|resumable
               (/resumable/upload/storage/v1/... too: the discovery document's resumable path)
               PUT/DELETE on the resumable session URI (...&upload_id=ID); needs no credentials
  OAuth2       POST /token  grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT
               (RS256 checked against the service-account key; iss, aud, iat/exp, scope);
               a service account's self-signed JWT is also accepted directly as a bearer token
  Metadata     GET /computeMetadata/v1/instance/service-accounts/default/token (and email,
               project/project-id, universe/universe-domain, ...) with Metadata-Flavor: Google
  Control      /_test/... (test only, no auth), JSON in and out:
               GET  health | requests[?clear=1] | uploads[?all=1] | faults | buckets
               POST reset | buckets {"name", "versioning"?: true} | token-lifetime {"seconds"}
                    expire-tokens {"token"?}
                    tokens {"token"?, "principal"?, "scopes"?, "expires_in"?}
                    permissions {"bucket", "token"|"principal", "access": readonly|none|full|objects}
                                (objects: roles/storage.objectAdmin, every storage.objects.*
                                permission and no storage.buckets.*)
                    fail-chunks {"count", "mode": "drop"|"503"|code, "after_bytes", "persist":
                                 "aligned"|"none", "commit"}
                    fail-next {"count", "status", "kind"?, "bucket"?, "name_regex"?, "retry_after"?}
                    faults {rule} (generic: kind, count, action status|drop|delay, status,
                            after_bytes, delay, commit, persist, bucket, name_regex)
                    uploads/expire {"upload_id"} | config {"chunk_policy": reject|truncate}
               DELETE faults | requests
               Fault kinds: bucket.get|list|insert|patch|delete, object.get|download|list|delete|patch|
               compose, upload.media|multipart|initiate|chunk|status|cancel, token,
               metadata.token; "*" is every storage call ("upload.*" a family).

Usage, from the repository root:
  /usr/bin/python3 -m testkit.gcs_server --port 0 --data-dir DIR [--state FILE]

The state file (JSON) names the endpoint, the generated service-account key (whose
token_uri is this server's /token) and the static bearer token. SIGTERM stops the server.
From Python tests, launcher.GcsTestServer starts one and drives it.

Modules:
  launcher.py            GcsTestServer: the server as a subprocess, for tests (in the test's process)
  __main__.py, server.py the process: options, the listening socket, the state file
  http_handler.py        Handler: request plumbing and routing to the mixins below
  buckets.py             bucket resource, get/list/insert/patch/delete
  objects.py             object resource, get/download/list/delete/patch/compose, committing objects
  versions.py            object versioning: noncurrent generations, ?generation= lookups
  uploads.py             uploadType=media and multipart
  resumable_uploads.py   resumable sessions: initiate, chunks, status, cancel, finalize
  auth.py                bearer tokens, scopes, per-bucket access levels
  oauth_endpoint.py      POST /token (JWT-bearer grant, ID tokens)
  metadata_server.py     the GCE metadata server
  control.py             the /_test/ control API
  store.py               state: buckets, objects, upload sessions, tokens, faults, request log
  request_body.py        Content-Length, chunked and multipart/related request bodies
  checksums.py           CRC32C and MD5, X-Goog-Hash checks
  preconditions.py       ifGenerationMatch and friends
  naming.py              object and bucket name rules
  partial_response.py    fields= selectors
  jwt.py                 RS256 JWTs: verify, split, sign
  service_account.py     the generated (or reused) service-account key
  formats.py             timestamps, base64url, etags, JSON state files
  errors.py              API and OAuth errors, injected-fault errors
  limits.py              sizes and limits
"""
