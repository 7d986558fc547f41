"""Runs the GCS test server: /usr/bin/python3 -m testkit.gcs_server --port 0 --data-dir DIR."""

import sys

from .server import main

if __name__ == "__main__":
    sys.exit(main())
