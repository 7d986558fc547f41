"""Where things are: the repository, the archie binaries under test (meson passes their paths
in environment variables, tests/meson.build) and the system tools the servers run."""
import os
import shutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def built(env_name, *path):
    """A binary of the build under test: meson passes its path in env_name (tests/meson.build)."""
    return os.environ.get(env_name) or os.path.join(REPO, "build", *path)


def find_binary(env_name, default, name):
    """A system tool: env_name if set, else default if it exists, else `name` on the PATH."""
    value = os.environ.get(env_name)
    if value:
        return value
    if os.path.exists(default):
        return default
    return shutil.which(name) or default


ARCHIE_BIN = built("ARCHIE_BIN", "src", "archie")
QUEUE_WORKER = built("ARCHIE_QUEUE_WORKER", "tests", "queue_worker")
S3_PROBE = built("ARCHIE_S3_PROBE", "tests", "s3_probe")
GCS_PROBE = built("ARCHIE_GCS_PROBE", "tests", "gcs_probe")
