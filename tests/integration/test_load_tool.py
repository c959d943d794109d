#!/usr/bin/env python3
"""bench/load against the real daemon on the CPU backend: the sweep (tiny
SpMM, upload, download, the DNN graph) and the fixed-rate mode produce one CSV row per point with consistent statistics and
no errors, and bad options are refused. (Its numbers are measurements for
docs/PERFORMANCE.md; nothing here asserts a speed.)"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from daemon_util import Daemon  # noqa: E402

ARGS = None


def run_load(address, *args, ok=True):
    out = os.path.join(tempfile.mkdtemp(prefix="load-"), "out.csv")
    p = subprocess.run([ARGS.load, "--address", address, "--csv", out, *args],
                       capture_output=True, text=True, timeout=120)
    if ok and p.returncode != 0:
        raise AssertionError("load failed (%d):\n%s%s" % (p.returncode, p.stdout, p.stderr))
    rows = []
    if os.path.exists(out):
        with open(out) as f:
            rows = list(csv.DictReader(f))
    return p, rows


def held_tensors(metrics_address):
    """The daemon's sparsed_tensors gauge, summed over devices."""
    import urllib.request
    text = urllib.request.urlopen("http://%s/metrics" % metrics_address, timeout=10).read()
    values = [float(line.rsplit(" ", 1)[1]) for line in text.decode().splitlines()
              if line.startswith("sparsed_tensors{") or line.startswith("sparsed_tensors ")]
    if not values:
        raise AssertionError("no sparsed_tensors sample in the daemon's metrics")
    return sum(values)


class LoadToolTest(unittest.TestCase):
    def check_row(self, row, op, clients, server_time):
        self.assertEqual(row["op"], op)
        self.assertEqual(int(row["clients"]), clients)
        self.assertGreater(int(row["requests"]), 0)
        self.assertEqual(int(row["errors"]), 0)
        p50, p90, p99, mx = (float(row[k]) for k in ("p50_us", "p90_us", "p99_us", "max_us"))
        self.assertTrue(0 < p50 <= p90 <= p99 <= mx, row)
        self.assertAlmostEqual(float(row["throughput_per_s"]),
                               int(row["requests"]) / 1.5, delta=1.0)  # 3 windows of 0.5 s
        if server_time:
            self.assertGreater(float(row["server_p50_us"]), 0)
            self.assertLess(float(row["server_p50_us"]), p50)  # inside the client's latency
        else:
            self.assertEqual(float(row["server_p50_us"]), -1)

    def test_sweep_rate_and_errors(self):
        with Daemon(ARGS.sparsed) as d:
            common = ("--warmup-s", "0.2", "--window-s", "0.5", "--windows", "3")
            p, rows = run_load(d.address, "--op", "spmm_tiny", "--concurrency", "1,3", *common)
            self.assertEqual(len(rows), 2, p.stdout)
            self.check_row(rows[0], "spmm_tiny", 1, True)
            self.check_row(rows[1], "spmm_tiny", 3, True)
            self.assertIn("p99_us", p.stdout)
            for op in ("upload", "download"):
                p, rows = run_load(d.address, "--op", op, "--size-bytes", "65536",
                                   "--concurrency", "2", *common)
                self.check_row(rows[0], op, 2, False)
            # The DNN network as one Graphs.Run per request (small here).
            p, rows = run_load(d.address, "--op", "dnn_graph", "--dnn-layers", "4",
                               "--dnn-neurons", "64", "--dnn-batch", "16", "--concurrency", "2",
                               *common)
            self.check_row(rows[0], "dnn_graph", 2, True)
            # The F.linear form with the result held (and deleted by each request):
            # nothing is left held afterwards (the daemon's tensor gauge).
            p, rows = run_load(d.address, "--op", "dnn_graph", "--dnn-layers", "3",
                               "--dnn-neurons", "64", "--dnn-batch", "16", "--dnn-form", "ywt",
                               "--dnn-keep", "--concurrency", "1", *common)
            self.check_row(rows[0], "dnn_graph", 1, True)
            self.assertEqual(held_tensors(d.metrics), 0)
            p, _ = run_load(d.address, "--op", "dnn_graph", "--dnn-form", "wy", ok=False)
            self.assertIn("--dnn-form = 'wy' must be yw or ywt", p.stderr)
            p, _ = run_load(d.address, "--op", "dnn_graph", "--dnn-layers", "0", ok=False)
            self.assertIn("--dnn-layers = 0", p.stderr)
            # Open loop at 100 requests/s over 1.5 s: about 150 requests.
            p, rows = run_load(d.address, "--op", "spmm_tiny", "--rate", "100",
                               "--concurrency", "2", *common)
            self.assertGreaterEqual(int(rows[0]["requests"]), 75)
            self.assertLessEqual(int(rows[0]["requests"]), 153)
            self.assertEqual(float(rows[0]["rate"]), 100)
            # What the tool made on the daemon is gone afterwards.
            listed = subprocess.run([ARGS.sparsectl, "--server", d.address, "ls", "-q"],
                                    capture_output=True, text=True, check=True).stdout
            self.assertEqual(listed.strip(), "")
            p, _ = run_load(d.address, "--op", "nope", ok=False)
            self.assertEqual(p.returncode, 2)
            self.assertIn("--op = 'nope'", p.stderr)
            p, _ = run_load(d.address, "--op", "upload", "--size-bytes", "2", ok=False)
            self.assertIn("--size-bytes = 2", p.stderr)
            self.assertEqual(d.stop(), 0)
        p, _ = run_load("127.0.0.1:1", "--op", "spmm_tiny", ok=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("UNAVAILABLE", p.stderr.upper())


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--sparsed", required=True)
    ap.add_argument("--sparsectl", required=True)
    ap.add_argument("--load", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
