"""Test data files: random contents of a given size and their SHA-256."""
import hashlib
import os

MiB = 1 << 20


def write_random(path, size, chunk=16 * MiB):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, chunk)
            f.write(os.urandom(n))
            left -= n
    return path


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 * MiB), b""):
            h.update(block)
    return h.hexdigest()
