#!/usr/bin/env python3
"""What a hostile client on the same network can do to the daemon's HTTP
endpoint (issue 17): stalled connections must not starve /metrics and
/healthz."""

import argparse
import os
import socket
import sys
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


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
