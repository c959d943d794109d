#!/usr/bin/env python3
"""Shutdown under calls that do not end (issue 17): SIGTERM exits within the
grace plus the daemon's bound even while a long CreateLayer runs, and a
second signal exits at once. The long call is a random-pattern layer of
10^6 x 10^6 (work the daemon does not bound yet)."""

import argparse
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from daemon_util import Daemon  # noqa: E402

ARGS = None
GRACE = 1.0
BOUND = 2.0  # Daemon::kShutdownBoundSeconds


class ShutdownTest(unittest.TestCase):
    def start_long_call(self, d):
        """A CreateLayer that runs for minutes, started in the background."""
        p = subprocess.Popen([ARGS.sparsectl, "--server", d.address, "layer", "create",
                              "--in", "1000000", "--out", "1000000", "--init", "random-pattern",
                              "--sparsity", "0.999999"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(p.kill)
        time.sleep(1.0)  # let it get into the daemon
        self.assertIsNone(p.poll(), "the long call ended early")
        return p

    def test_sigterm_exits_within_grace_plus_bound(self):
        with Daemon(ARGS.sparsed, ["--shutdown-grace-seconds", str(GRACE)]) as d:
            self.start_long_call(d)
            t0 = time.monotonic()
            code = d.stop()
            took = time.monotonic() - t0
            log = open(d.log_path).read()
        self.assertEqual(code, 1, log)
        self.assertLess(took, GRACE + BOUND + 1.5, log)
        self.assertGreater(took, GRACE, log)
        self.assertIn("calls still running", log)

    def test_second_signal_exits_at_once(self):
        with Daemon(ARGS.sparsed, ["--shutdown-grace-seconds", "30"]) as d:
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
