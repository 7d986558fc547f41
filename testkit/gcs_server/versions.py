"""Object versioning: a bucket's noncurrent generations. With versioning enabled, the live
object that an upload replaces, or that a DELETE without ?generation= removes, is kept as a
noncurrent generation (with timeDeleted) instead of being discarded; ?generation= reaches any
generation, live or noncurrent. The callers hold the store lock."""

import time

from .errors import bad_request
from .store import unlink_quietly


def requested_generation(q):
    """The generation a request names (its ?generation=, or a compose source's "generation")
    as an int; None when it names none, i.e. the live object."""
    v = q.get("generation")
    if v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        raise bad_request("Invalid value for generation: %s" % v)


def find_generation(bucket, name, generation):
    """That generation of the object, live or noncurrent; None if there is no such generation."""
    live = bucket.objects.get(name)
    if live is not None and live.generation == generation:
        return live
    for o in bucket.noncurrent.get(name, ()):
        if o.generation == generation:
            return o
    return None


def retire(bucket, o):
    """The live object o was replaced or deleted (not by its generation): versioning keeps
    it as a noncurrent generation, otherwise its data goes."""
    if bucket.versioning:
        o.time_deleted = time.time()
        # The live generation is newer than every noncurrent one, so the list stays ascending.
        bucket.noncurrent.setdefault(o.name, []).append(o)
    else:
        unlink_quietly(o.path)


def destroy(bucket, o):
    """Deletes generation o for good, whether it is live or noncurrent (no copy is kept)."""
    if bucket.objects.get(o.name) is o:
        del bucket.objects[o.name]
    else:
        generations = bucket.noncurrent[o.name]
        generations.remove(o)
        if not generations:
            del bucket.noncurrent[o.name]
    unlink_quietly(o.path)


def every_generation(bucket):
    """Every live and noncurrent generation in the bucket, in no particular order."""
    out = list(bucket.objects.values())
    for generations in bucket.noncurrent.values():
        out.extend(generations)
    return out
