#!/usr/bin/env python3
"""What a hostile client on the same network can do to the daemon (issue
17): stalled HTTP connections must not starve /metrics and /healthz, and
without authentication the daemon serves only loopback unless told
--insecure (protected mode)."""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from daemon_util import Daemon  # noqa: E402

ARGS = None


class SlowHttpClientsTest(unittest.TestCase):
    def test_stalled_connections_do_not_starve_scrapes(self):
        with Daemon(ARGS.sparsed) as d:
            host, port = d.metrics.rsplit(":", 1)
            stalled = []
            try:
                # 48 connections (3x what starved it) that send half a request line and stop.
                for _ in range(48):
                    s = socket.create_connection((host, int(port)), timeout=5)
                    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    stalled.append(s)
                time.sleep(0.2)
                for path in ("/healthz", "/metrics"):
                    t0 = time.monotonic()
                    body = urllib.request.urlopen(f"http://{d.metrics}{path}", timeout=10).read()
                    took = time.monotonic() - t0
                    self.assertLess(took, 2.0, path)
                    self.assertTrue(body)
            finally:
                for s in stalled:
                    s.close()
            self.assertEqual(d.stop(), 0)


class ProtectedModeTest(unittest.TestCase):
    def test_other_addresses_need_insecure(self):
        data = tempfile.mkdtemp(prefix="protected-")
        p = subprocess.run([ARGS.sparsed, "--listen", "0.0.0.0:0", "--metrics-listen", "",
                            "--device", "cpu", "--data-dir", data],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("listen = '0.0.0.0:0' accepts connections from other machines",
                      p.stdout + p.stderr)
        self.assertIn("--insecure", p.stdout + p.stderr)
        announce = os.path.join(data, "announce.json")
        d = subprocess.Popen([ARGS.sparsed, "--listen", "0.0.0.0:0", "--metrics-listen", "",
                              "--device", "cpu", "--data-dir", data, "--insecure",
                              "--announce-file", announce],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.time() + 30
            while not os.path.exists(announce) and d.poll() is None:
                self.assertLess(time.time(), deadline, "no announce file")
                time.sleep(0.05)
            self.assertIsNone(d.poll(), "the daemon exited")
        finally:
            d.terminate()
            out, _ = d.communicate(timeout=30)
        self.assertEqual(d.returncode, 0, out)
        self.assertIn("--insecure: serving 0.0.0.0:0 without authentication", out)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
