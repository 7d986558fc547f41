"""The server process: the listening socket, command-line options, the state file."""

import argparse
import http.server
import os
import secrets
import signal
import socket
import sys
import threading
import time

from .checksums import CRC32C_BACKEND
from .formats import write_json_atomic
from .http_handler import Handler
from .jwt import RsaPublicKey
from .service_account import generate_service_account, load_service_account
from .store import Bucket, Store, unlink_quietly


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, BrokenPipeError, socket.timeout, TimeoutError)):
            return
        super().handle_error(request, client_address)


def make_server(port, store, config):
    """The server on 127.0.0.1:port; each connection's Handler sees this store and config."""
    handler = type("BoundHandler", (Handler,), {"store": store, "config": config})
    return Server(("127.0.0.1", port), handler)


def main(argv=None):
    """Runs the server until SIGTERM or SIGINT (python3 -m testkit.gcs_server --help)."""
    ap = argparse.ArgumentParser(
        prog="python3 -m testkit.gcs_server",
        description="A Google Cloud Storage JSON API test server for archie's GCS client tests.")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: pick a free one)")
    ap.add_argument("--data-dir", required=True, help="object data lives here (emptied at start)")
    ap.add_argument("--state", help="JSON state file to write (default DATA_DIR/state.json)")
    ap.add_argument("--project", default="archie-test")
    ap.add_argument("--service-account-email", default=None,
                    help="default: archie-test@PROJECT.iam.gserviceaccount.com")
    ap.add_argument("--service-account-key", help="reuse this service-account JSON key instead of generating one")
    ap.add_argument("--metadata-email", default=None,
                    help="principal of metadata-server tokens (default archie-workload@PROJECT.iam...)")
    ap.add_argument("--static-token", action="append", default=[],
                    help="a bearer token accepted forever (repeatable; one is generated if none)")
    ap.add_argument("--static-principal", default="archie-static@archie.test")
    ap.add_argument("--token-lifetime", type=float, default=3600.0, help="seconds (expires_in of issued tokens)")
    ap.add_argument("--chunk-policy", choices=("reject", "truncate"), default="reject",
                    help="non-final resumable chunks >= 256 KiB that are not a multiple of 256 KiB: "
                         "reject with 400, or persist the largest multiple (308 Range shows it)")
    ap.add_argument("--bucket", action="append", default=[], help="create this bucket at start (repeatable)")
    ap.add_argument("--exit-with-parent", action="store_true", help="exit when the parent process dies")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args(argv)

    data_dir = os.path.abspath(args.data_dir)
    os.makedirs(data_dir, exist_ok=True)
    state_path = os.path.abspath(args.state or os.path.join(data_dir, "state.json"))
    state_dir = os.path.dirname(state_path)
    os.makedirs(state_dir, exist_ok=True)
    project = args.project
    sa_email = args.service_account_email or "archie-test@%s.iam.gserviceaccount.com" % project

    store = Store(data_dir, project, args.token_lifetime, args.chunk_policy)
    config = {"verbose": args.verbose, "initial_buckets": list(args.bucket),
              "metadata_email": args.metadata_email or "archie-workload@%s.iam.gserviceaccount.com" % project}
    server = make_server(args.port, store, config)
    port = server.server_address[1]
    endpoint = "http://127.0.0.1:%d" % port
    token_uri = endpoint + "/token"
    config["token_uri"] = token_uri

    if args.service_account_key:
        key_json, key_pem, sa = load_service_account(args.service_account_key, state_dir)
    else:
        key_json, key_pem, sa = generate_service_account(state_dir, token_uri, sa_email, project)
    config["service_account"] = sa
    config["private_key_pem"] = key_pem
    config["public_key"] = RsaPublicKey.from_private_pem(key_pem)

    static_tokens = args.static_token or ["ya29.archie-static-" + secrets.token_urlsafe(24)]
    for t in static_tokens:
        store.add_static_token(t, args.static_principal)
    for name in args.bucket:
        store.buckets[name] = Bucket(name, project)

    state = {
        "endpoint": endpoint,
        "port": port,
        "pid": os.getpid(),
        "data_dir": data_dir,
        "project": project,
        "service_account_key": key_json,
        "service_account_private_key_pem": key_pem,
        "service_account_email": sa["client_email"],
        "token_uri": token_uri,
        "static_token": static_tokens[0],
        "static_tokens": static_tokens,
        "static_principal": args.static_principal,
        "metadata_host": "127.0.0.1:%d" % port,
        "metadata_email": config["metadata_email"],
        "crc32c_backend": CRC32C_BACKEND,
        "chunk_policy": args.chunk_policy,
    }
    write_json_atomic(state_path, state)

    stopping = threading.Event()

    def stop(*_):
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_with_parent:
        parent = os.getppid()

        def watch():
            while not stopping.is_set():
                if os.getppid() != parent:
                    stop()
                    return
                time.sleep(0.5)

        threading.Thread(target=watch, daemon=True).start()

    sys.stderr.write("gcs-test-server: listening on %s (crc32c: %s, state: %s)\n"
                     % (endpoint, CRC32C_BACKEND, state_path))
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        unlink_quietly(state_path)
    return 0
