"""Starts the real sparsed on 127.0.0.1 with ephemeral ports for Python tests.

Environment (for running the tests against a bundled daemon on a GPU machine):
  SPARSED_DAEMON_BIN   the daemon binary to start instead of the one given
  SPARSED_TEST_DEVICE  its --device (default "cpu")
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time


def test_device():
    """--device for the daemon under test: $SPARSED_TEST_DEVICE, else "cpu"."""
    return os.environ.get("SPARSED_TEST_DEVICE") or "cpu"


def expected_backend():
    """The backend the daemon must report ("cpu" or "cuda"); None for "auto"."""
    device = test_device()
    if device == "auto":
        return None
    return "cpu" if device == "cpu" else "cuda"


class Daemon:
    def __init__(self, binary, extra_args=(), data_dir=None, env=None, listen="127.0.0.1:0"):
        """data_dir: the daemon's --data-dir (default: a fresh one under self.dir);
        pass the same one to a second Daemon to test persistence across restarts.
        env: variables added to the daemon's environment. listen: its --listen."""
        binary = os.environ.get("SPARSED_DAEMON_BIN") or binary
        self.device = test_device()
        self.dir = tempfile.mkdtemp(prefix="sparsed-pytest-")
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        announce = os.path.join(self.dir, "announce.json")
        self.log_path = os.path.join(self.dir, "sparsed.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "--listen", listen, "--metrics-listen", "127.0.0.1:0",
             "--device", self.device, "--data-dir", self.data_dir,
             "--announce-file", announce, "--log-level", "debug", *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT,
            env=dict(os.environ, **(env or {})))
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sparsed exited early:\n" + open(self.log_path).read())
            try:
                with open(announce) as f:
                    a = json.load(f)
                self.address, self.metrics = a["grpc"], a["metrics"]
                return
            except (OSError, ValueError):
                time.sleep(0.02)
        self.proc.kill()
        raise RuntimeError("sparsed did not start within 30 s")

    def stop(self):
        """SIGTERM; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.log.close()
        return code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if exc[0] is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print("daemon log:\n" + open(self.log_path).read())
