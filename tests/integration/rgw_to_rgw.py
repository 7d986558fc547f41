"""Kept so that code importing the old module still works: the RGW-to-RGW setup lives in
tests/integration/harness.py (rgw_to_rgw_buckets, rgw_to_rgw_config) now."""
from tests.integration.harness import EVENT_SUBJECT as SUBJECT  # noqa: F401
from tests.integration.harness import rgw_to_rgw_buckets as make_buckets  # noqa: F401
from tests.integration.harness import rgw_to_rgw_config as config  # noqa: F401
