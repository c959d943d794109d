#!/usr/bin/python3
"""client/python/examples/mlp_24.py against a fresh daemon (CPU backend unless
SPARSED_TEST_DEVICE says otherwise), with --dtype f32, bf16 and f16.

The example's own NumPy side (its rounding, 2:4 pruning and forward pass,
written without the client's converters) is the reference for the daemon;
it exits 1 when the daemon's pruned weights differ from it bit for bit or
the 2:4 accuracies differ. Here: each run exits 0 and prints the four
result lines; both 2:4 accuracies agree; the dense MLP and its 2:4 version
are good classifiers (the dense one reaches about 97%, one-shot 2:4 loses a
point or so; the bounds leave room for another backend's rounding); the
logits agree within a tolerance per dtype (on the CPU backend, which
accumulates in f64 as the reference does, they are equal); nothing is left
held in the daemon. Also: the comparison does catch a difference (the
example with its bf16 rounding replaced by truncation exits 1), and an
unreachable address exits 2.
"""

import argparse
import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(ROOT, "client", "python", "examples", "mlp_24.py")
sys.path.insert(0, os.path.join(ROOT, "client", "python"))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import sparsed_client  # noqa: E402,F401 - makes the checkout's package importable
import sparsed  # noqa: E402
from daemon_util import Daemon  # noqa: E402

ARGS = None
DENSE_MIN, NM_MIN = 94.0, 90.0      # percent of the 360 test images
LOGIT_TOLERANCE = {"f32": 1e-3, "f16": 2e-2, "bf16": 1e-1}
ACCURACY = re.compile(r"^(dense|2:4) accuracy \((\w+), ([\w ]+)\): (\d+\.\d+)% \((\d+)/(\d+)\)$")
DIFF = re.compile(r"^max abs logit difference: (\S+) ")
PRUNED = re.compile(r"^(fc1|fc2): (\d+)x(\d+) weight pruned to 2:4 in sparsed, identical to "
                    r"NumPy's \((\d+) of (\d+) kept\)$")


def parse(stdout):
    """{"dense": (dtype, correct, total), "sparsed": ..., "cpu": ...},
    the logit difference, {layer: (rows, cols, kept)}."""
    acc, diff, pruned = {}, None, {}
    for line in stdout.splitlines():
        m = ACCURACY.match(line)
        if m:
            key = {"NumPy": "dense", "sparsed": "sparsed", "CPU NumPy": "cpu"}[m.group(3)]
            acc[key] = (m.group(2), int(m.group(5)), int(m.group(6)))
            continue
        m = DIFF.match(line)
        if m:
            diff = float(m.group(1))
            continue
        m = PRUNED.match(line)
        if m:
            pruned[m.group(1)] = tuple(int(g) for g in m.group(2, 3, 4, 5))
    return acc, diff, pruned


class ExampleMlp24Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(ARGS.sparsed)

    @classmethod
    def tearDownClass(cls):
        with cls.daemon:  # prints the daemon's log if it did not stop cleanly
            code = cls.daemon.stop()
            if code != 0:
                raise AssertionError("sparsed exited with status %d" % code)

    def run_example(self, *args):
        # --address wins over SPARSED_ADDR (set here to an address nobody serves).
        env = dict(os.environ, SPARSED_ADDR="127.0.0.1:1")
        return subprocess.run([sys.executable, SCRIPT, *args], env=env, capture_output=True,
                              text=True, timeout=240)

    def check_dtype(self, dtype):
        proc = self.run_example("--address", self.daemon.address, "--dtype", dtype)
        out = proc.stdout + proc.stderr
        self.assertEqual(proc.returncode, 0, out)
        print(proc.stdout, end="")
        acc, diff, pruned = parse(proc.stdout)
        self.assertEqual(set(acc), {"dense", "sparsed", "cpu"}, out)
        self.assertEqual(acc["dense"][0], "f32", out)
        self.assertEqual(acc["sparsed"][0], dtype, out)
        self.assertEqual(acc["cpu"][0], dtype, out)
        total = acc["dense"][2]
        self.assertEqual(total, 360, out)
        pct = {k: 100.0 * v[1] / total for k, v in acc.items()}
        self.assertGreaterEqual(pct["dense"], DENSE_MIN, out)
        self.assertGreaterEqual(pct["sparsed"], NM_MIN, out)
        self.assertEqual(acc["sparsed"][1], acc["cpu"][1], out)
        self.assertIsNotNone(diff, out)
        self.assertLessEqual(diff, LOGIT_TOLERANCE[dtype], out)
        # Both weights, 2:4: half of each kept.
        self.assertEqual(pruned, {"fc1": (128, 64, 4096, 8192), "fc2": (10, 128, 640, 1280)}, out)
        # The example's scope deleted everything it created.
        with sparsed.Client(self.daemon.address) as c:
            self.assertEqual([t.id for t in c.list()], [])

    def test_f32(self):
        self.check_dtype("f32")

    def test_bf16(self):
        self.check_dtype("bf16")

    def test_f16(self):
        self.check_dtype("f16")

    def test_mismatch_is_caught(self):
        """The example's comparison is live: with bf16 truncated instead of
        rounded on its NumPy side, it reports the weights as different."""
        spec = importlib.util.spec_from_file_location("mlp_24_under_test", SCRIPT)
        example = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(example)
        rounded = example.to_storage

        def truncated(a, dtype):
            if dtype != "bf16":
                return rounded(a, dtype)
            return (np.ascontiguousarray(a, np.float32).view(np.uint32) >> 16).astype(np.uint16)

        example.to_storage = truncated
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = example.main(["--address", self.daemon.address, "--dtype", "bf16"])
        self.assertEqual(code, 1, out.getvalue())
        self.assertIn("2:4 weights from sparsed differ from NumPy's", out.getvalue())
        self.assertIn("FAILED: the pruned weights differ", out.getvalue())

    def test_unreachable(self):
        proc = self.run_example("--address", "127.0.0.1:1")
        self.assertEqual(proc.returncode, 2, proc.stdout + proc.stderr)
        self.assertIn("UNAVAILABLE", proc.stderr)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
