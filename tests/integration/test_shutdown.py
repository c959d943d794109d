#!/usr/bin/env python3
"""Shutdown under calls that do not end (issue 17): SIGTERM exits within the
grace plus the daemon's bound even while a call that ignores cancellation
runs, and a second signal exits at once. The long call is a checkpoint save
slowed by the daemon's test hook (SPARSED_TEST_CHECKPOINT_SLOW_WRITE_US: a
pause after every 64 KiB written), about a minute long."""

import argparse
import os
import tempfile
import subprocess
import sys
import time
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from daemon_util import Daemon  # noqa: E402

ARGS = None
GRACE = 1.0
BOUND = 1.8  # Daemon::kShutdownBoundSeconds


class ShutdownTest(unittest.TestCase):
    SLOW = {"SPARSED_TEST_CHECKPOINT_SLOW_WRITE_US": "1000000"}  # 1 s per 64 KiB

    def start_long_call(self, d):
        """A checkpoint save of a 4 MB tensor (64 pieces, a second each),
        started in the background."""
        tmp = tempfile.mkdtemp(prefix="shutdown-")
        path = os.path.join(tmp, "big.npy")
        np.save(path, np.arange(1 << 20, dtype=np.float32).reshape(1024, 1024))
        ctl = [ARGS.sparsectl, "--server", d.address]
        subprocess.run(ctl + ["put", path, "--name", "big"], check=True, capture_output=True)
        p = subprocess.Popen(ctl + ["checkpoint", "save", "slow"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(p.kill)
        time.sleep(1.0)  # let it get into the daemon
        self.assertIsNone(p.poll(), "the long call ended early")
        return p

    def test_sigterm_exits_within_grace_plus_bound(self):
        with Daemon(ARGS.sparsed, ["--shutdown-grace-seconds", str(GRACE)], env=self.SLOW) as d:
            self.start_long_call(d)
            t0 = time.monotonic()
            code = d.stop()
            took = time.monotonic() - t0
            log = open(d.log_path).read()
        print("SIGTERM under a call that ignores cancellation: exited after %.2f s "
              "(grace %.1f s + bound %.1f s)" % (took, GRACE, BOUND))
        self.assertEqual(code, 1, log)
        self.assertLess(took, GRACE + BOUND + 1.5, log)
        self.assertGreater(took, GRACE, log)
        self.assertIn("calls still running", log)

    def test_second_signal_exits_at_once(self):
        with Daemon(ARGS.sparsed, ["--shutdown-grace-seconds", "30"], env=self.SLOW) as d:
            self.start_long_call(d)
            d.proc.terminate()
            time.sleep(0.3)
            t0 = time.monotonic()
            d.proc.terminate()
            code = d.proc.wait(timeout=10)
            took = time.monotonic() - t0
            d.log.close()
            log = open(d.log_path).read()
        self.assertEqual(code, 1, log)
        self.assertLess(took, 1.0, log)
        self.assertIn("received a second SIGTERM", log)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    p.add_argument("--sparsectl", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
