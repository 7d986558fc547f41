"""Kept so that code importing the old module still works: minio_event lives in
tests/integration/harness.py now; new code imports it from there."""
from tests.integration.harness import minio_event, query_escape  # noqa: F401
