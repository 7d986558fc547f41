"""The JSON API's generation and metageneration preconditions."""

from .errors import ApiError, bad_request, precondition_failed


def check_preconditions(obj, q, for_read=False):
    """JSON API preconditions against the live object (None if there is none)."""
    def num(key):
        v = q.get(key)
        if v is None:
            return None
        try:
            return int(v)
        except ValueError:
            raise bad_request("Invalid value for %s: %s" % (key, v))

    gm, gnm = num("ifGenerationMatch"), num("ifGenerationNotMatch")
    mm, mnm = num("ifMetagenerationMatch"), num("ifMetagenerationNotMatch")
    gen = obj.generation if obj is not None else 0
    if gm is not None and gen != gm:
        raise precondition_failed("If-Match")
    if mm is not None and (obj is None or obj.metageneration != mm):
        raise precondition_failed("If-Match")
    not_match_failed = (gnm is not None and ((gnm == 0 and obj is not None) or (obj is not None and gen == gnm))) \
        or (mnm is not None and obj is not None and obj.metageneration == mnm)
    if not_match_failed:
        if for_read:
            raise ApiError(304, "notModified", "Not Modified")
        raise precondition_failed("If-None-Match")


def check_bucket_preconditions(bucket, q):
    """ifMetagenerationMatch and ifMetagenerationNotMatch against a bucket."""
    for key, holds in (("ifMetagenerationMatch", lambda n: bucket.metageneration == n),
                       ("ifMetagenerationNotMatch", lambda n: bucket.metageneration != n)):
        v = q.get(key)
        if v is None:
            continue
        try:
            n = int(v)
        except ValueError:
            raise bad_request("Invalid value for %s: %s" % (key, v))
        if not holds(n):
            raise precondition_failed("If-Match" if key == "ifMetagenerationMatch" else "If-None-Match")
