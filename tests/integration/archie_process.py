"""Runs the archie binary under test as a child process and reads its JSON logs."""
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARCHIE_BIN = os.environ.get("ARCHIE_BIN", os.path.join(REPO, "build", "src", "archie"))


def run_cli(*args, env=None, timeout=30):
    """Runs a short archie command and returns the CompletedProcess (text mode)."""
    full_env = dict(os.environ)
    full_env.pop("ARCHIE_CONFIG", None)
    full_env.update(env or {})
    return subprocess.run([ARCHIE_BIN, *args], capture_output=True, text=True, env=full_env, timeout=timeout)


def write_config(text, directory=None):
    fd, path = tempfile.mkstemp(prefix="archie-", suffix=".toml", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


class ArchieProcess:
    """`archie run` in the background; collects every log line it writes."""

    def __init__(self, config_text, env=None, extra_args=()):
        self.config_path = write_config(config_text)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen([ARCHIE_BIN, "run", "--config", self.config_path, *extra_args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=full_env)
        self.lines = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        # Raw stderr is kept on disk too: sanitizer reports are not JSON and are long.
        self.raw_log_path = os.path.join(tempfile.gettempdir(), f"archie-{self.proc.pid}.stderr")
        raw_log = open(self.raw_log_path, "w")
        for raw in self.proc.stderr:
            raw_log.write(raw)
            raw_log.flush()
            try:
                entry = json.loads(raw)
            except ValueError:
                entry = {"msg": "(not json)", "raw": raw}
            with self._lock:
                self.lines.append(entry)

    def logs(self):
        with self._lock:
            return list(self.lines)

    def wait_for_log(self, msg, timeout=30, **fields):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.logs():
                if entry.get("msg") == msg and all(entry.get(k) == v for k, v in fields.items()):
                    return entry
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"archie never logged {msg!r} {fields}; last logs: {self.logs()[-5:]}; "
                             f"full stderr: {getattr(self, 'raw_log_path', '?')}")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=60):
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stderr:
            self.proc.stderr.close()
        if os.path.exists(self.config_path):
            os.unlink(self.config_path)


def http_get(url, method="GET", timeout=10):
    """Returns (status, headers, body bytes) without raising on HTTP errors."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
