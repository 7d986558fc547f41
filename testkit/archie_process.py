"""archie's processes in tests: `archie run` in the background (ArchieProcess) or any
archie-built binary that logs JSON lines (LoggedProcess), with log capture, waiting for a log
line, the admin port and metrics scraping; short CLI commands (run_cli) and config files
(write_config)."""
import json
import os
import signal
import subprocess
import tempfile
import threading
import time

from testkit.metrics import parse_metrics
from testkit.net import http_get
from testkit.paths import ARCHIE_BIN


def run_cli(*args, env=None, timeout=30, binary=None):
    """Runs a short archie command and returns the CompletedProcess (text mode)."""
    full_env = dict(os.environ)
    full_env.pop("ARCHIE_CONFIG", None)
    full_env.update(env or {})
    return subprocess.run([binary or ARCHIE_BIN, *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout)


def write_config(text, directory=None, path=None):
    """Writes text to path, or to a new temporary archie-*.toml; returns the path."""
    if path is None:
        fd, path = tempfile.mkstemp(prefix="archie-", suffix=".toml", dir=directory)
        os.close(fd)
    with open(path, "w") as f:
        f.write(text)
    return path


class LoggedProcess:
    """A child that writes one JSON object per stderr line (archie's log format): every line is
    kept in memory for the test and, raw, in raw_log_path (sanitizer reports are not JSON)."""

    log_timeout = 30  # seconds wait_for_log waits by default
    stop_timeout = 30  # seconds from SIGTERM to SIGKILL in stop()

    def __init__(self, argv, env=None, raw_log_path=None, name="archie"):
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.name = name
        self.started = time.time()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=full_env)
        self.raw_log_path = raw_log_path or os.path.join(tempfile.gettempdir(), f"{name}-{self.proc.pid}.stderr")
        self.lines = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        with open(self.raw_log_path, "w") as raw_log:
            for raw in self.proc.stderr:
                raw_log.write(raw)
                raw_log.flush()
                try:
                    entry = json.loads(raw)
                except ValueError:
                    entry = {"msg": "(not json)", "raw": raw}
                with self._lock:
                    self.lines.append(entry)

    def logs(self, msg=None, **fields):
        """Every log entry so far, or those with this msg and these field values."""
        with self._lock:
            lines = list(self.lines)
        if msg is None:
            return lines
        return [e for e in lines if e.get("msg") == msg and all(e.get(k) == v for k, v in fields.items())]

    def logged(self, msg, **fields):
        return bool(self.logs(msg, **fields))

    def tail(self, n=25):
        return "\n".join(json.dumps(e) for e in self.logs()[-n:])

    def wait_for_log(self, msg, timeout=None, **fields):
        """The first entry with msg and fields; AssertionError once the timeout passes or the
        process has exited without writing it."""
        deadline = time.monotonic() + (self.log_timeout if timeout is None else timeout)
        while time.monotonic() < deadline:
            found = self.logs(msg, **fields)
            if found:
                return found[0]
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"{self.name} never logged {msg!r} {fields} (rc={self.proc.poll()}); last logs:\n"
                             f"{self.tail()}\nfull stderr: {self.raw_log_path}")

    def admin_port(self):
        """The admin HTTP server's port, as archie logged it (works with port = 0)."""
        return self.wait_for_log("admin server listening")["port"]

    def metrics_text(self):
        status, _, body = http_get(f"http://127.0.0.1:{self.admin_port()}/metrics", timeout=5)
        assert status == 200, status
        return body.decode()

    def metrics(self):
        """[(name, labels, value)] scraped from /metrics now."""
        return parse_metrics(self.metrics_text())

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        """SIGKILL (no drain, no cleanup); the time of the kill."""
        self.proc.kill()
        self.proc.wait()
        return time.time()

    def wait(self, timeout=60):
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stderr:
            self.proc.stderr.close()


class ArchieProcess(LoggedProcess):
    """`archie run` in the background on config_text (written to config_path, or to a
    temporary file removed by stop())."""

    def __init__(self, config_text, env=None, extra_args=(), binary=None, config_path=None, raw_log_path=None):
        self._own_config = config_path is None
        self.config_path = write_config(config_text, path=config_path)
        super().__init__([binary or ARCHIE_BIN, "run", "--config", self.config_path, *extra_args], env=env,
                         raw_log_path=raw_log_path)

    def wait_ready(self, timeout=60):
        """Blocks until archie consumes from JetStream."""
        return self.wait_for_log("consuming", timeout=timeout)

    def stop(self):
        super().stop()
        if self._own_config and os.path.exists(self.config_path):
            os.unlink(self.config_path)
