"""Object checksums: CRC32C (Castagnoli) and MD5 as Cloud Storage shows them (base64), and
the checks of client-supplied hashes (X-Goog-Hash, md5Hash/crc32c in metadata).

CRC32C's fast path calls ext2fs_crc32c_le from libext2fs (e2fsprogs) via ctypes; it is
checked against the standard check value before use. Without it a table-driven,
slicing-by-8 pure-Python implementation is used (tens of MB/s).
"""

import base64
import ctypes
import struct

from .errors import bad_request

_CRC_POLY = 0x82F63B78


def _make_tables():
    t0 = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _CRC_POLY if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for _ in range(7):
        prev = tables[-1]
        tables.append([(prev[i] >> 8) ^ t0[prev[i] & 0xFF] for i in range(256)])
    return tables


_TABLES = _make_tables()


def _crc_update_python(state, data):
    t0, t1, t2, t3, t4, t5, t6, t7 = _TABLES
    mv = memoryview(data)
    n8 = len(mv) & ~7
    crc = state
    for lo, hi in struct.iter_unpack("<II", mv[:n8]):
        crc ^= lo
        crc = (t7[crc & 0xFF] ^ t6[(crc >> 8) & 0xFF] ^ t5[(crc >> 16) & 0xFF] ^ t4[crc >> 24]
               ^ t3[hi & 0xFF] ^ t2[(hi >> 8) & 0xFF] ^ t1[(hi >> 16) & 0xFF] ^ t0[hi >> 24])
    for b in mv[n8:]:
        crc = (crc >> 8) ^ t0[(crc ^ b) & 0xFF]
    return crc


def _load_native_crc():
    for name in ("libext2fs.so.2",):
        try:
            lib = ctypes.CDLL(name)
            fn = lib.ext2fs_crc32c_le
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_uint32
        fn.argtypes = [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]

        def update(state, data, _fn=fn):
            if not isinstance(data, bytes):
                data = bytes(data)
            return _fn(state, data, len(data))

        if update(0xFFFFFFFF, b"123456789") ^ 0xFFFFFFFF == 0xE3069283:
            return update, "ext2fs_crc32c_le (libext2fs, via ctypes)"
    return None, None


_crc_update, CRC32C_BACKEND = _load_native_crc()
if _crc_update is None:
    _crc_update, CRC32C_BACKEND = _crc_update_python, "pure Python slicing-by-8"


class Crc32c:
    """Incremental CRC32C; b64() is Cloud Storage's form (base64 of the big-endian value)."""

    __slots__ = ("state",)

    def __init__(self, state=0xFFFFFFFF):
        self.state = state

    def update(self, data):
        if data:
            self.state = _crc_update(self.state, data)

    def copy(self):
        return Crc32c(self.state)

    @property
    def value(self):
        return self.state ^ 0xFFFFFFFF

    def b64(self):
        return base64.b64encode(self.value.to_bytes(4, "big")).decode()


def parse_goog_hash(values):
    out = {}
    for v in values or []:
        for part in v.split(","):
            part = part.strip()
            if "=" not in part:
                continue
            k, val = part.split("=", 1)
            out[k.strip().lower()] = val.strip()
    return out


def verify_hashes(expect_md5, expect_crc, md5_b64, crc_b64):
    """Checks the hashes a client gave (None: not given) against those computed; 400 if not."""
    if expect_crc is not None:
        _verify_hash("CRC32C", "CRC32C", 4, expect_crc, crc_b64)
    if expect_md5 is not None:
        _verify_hash("MD5", "MD5 hash", 16, expect_md5, md5_b64)


def _verify_hash(name, long_name, size, expected, calculated):
    try:
        ok = len(base64.b64decode(expected, validate=True)) == size
    except ValueError:
        ok = False
    if not ok:
        raise bad_request("Invalid %s hash: \"%s\"." % (name, expected))
    if expected != calculated:
        raise bad_request("Provided %s \"%s\" doesn't match calculated %s \"%s\"."
                          % (long_name, expected, long_name, calculated))
