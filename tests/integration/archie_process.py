"""Kept so that code importing the old module still works: everything lives in
tests/integration/harness.py now; new code imports it from there."""
from tests.integration.harness import ARCHIE_BIN, REPO, ArchieProcess, http_get, run_cli, write_config  # noqa: F401
