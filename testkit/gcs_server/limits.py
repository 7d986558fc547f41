"""Sizes and limits of the GCS test server."""

KIB = 1024
MIB = 1024 * KIB
QUANTUM = 256 * KIB            # resumable chunk granularity (262144 bytes)
IO_BLOCK = 1 * MIB             # read/write/hash unit
DRAIN_LIMIT = 8 * MIB          # unread request bodies up to this size are drained, else the connection is closed
JSON_BODY_LIMIT = 16 * MIB
LIST_MAX = 1000
MAX_COMPOSE_SOURCES = 32
