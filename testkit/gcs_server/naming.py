"""Cloud Storage's rules for object and bucket names."""

import re

from .errors import ApiError, bad_request


def validate_object_name(name):
    if name is None or name == "":
        raise ApiError(400, "required", "Required")
    raw = name.encode("utf-8", "surrogatepass")
    if len(raw) > 1024 or "\r" in name or "\n" in name or name in (".", ".."):
        raise bad_request("The specified object name is not valid.")


BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
