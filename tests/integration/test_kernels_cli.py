#!/usr/bin/env python3
"""sparsectl kernels ls|clear|warm against the real daemon on the CPU backend
(which compiles no kernels at run time): an empty listing (table and --json),
clear removes nothing, warm is FAILED_PRECONDITION for valid specs and
INVALID_ARGUMENT naming the field for malformed ones, usage errors exit 2, and
the kernel cache series are in /metrics."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from daemon_util import Daemon, test_device  # noqa: E402

ARGS = None

SPECS = {"kernels": [{"kernel": "bsr_spmm_tc", "params": {"block": 16, "dtype": "f16"}},
                     {"kernel": "bsr_spmm_tc", "params": {"block": 32, "dtype": "bf16"}}]}


@unittest.skipUnless(test_device() == "cpu", "expectations of the CPU backend")
class KernelsCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sparsectl-kernels-")
        cls.daemon = Daemon(ARGS.sparsed)

    @classmethod
    def tearDownClass(cls):
        assert cls.daemon.stop() == 0
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ctl(self, *args, ok=True, stdin=None):
        p = subprocess.run([ARGS.sparsectl, "--server", self.daemon.address] + list(args),
                           capture_output=True, text=True, timeout=60, input=stdin)
        if ok:
            self.assertEqual(p.returncode, 0, "sparsectl %s failed:\n%s%s" % (args, p.stdout, p.stderr))
        return p

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_ls_is_empty(self):
        out = self.ctl("kernels", "ls").stdout
        self.assertIn("(no kernels)", out)
        self.assertIn("cache: none (this backend compiles no kernels at run time)\n"
                      "hits: 0  misses: 0  compiles: 0  compile errors: 0\n", out)
        doc = json.loads(self.ctl("kernels", "ls", "--json").stdout)
        self.assertEqual(doc["entries"], [])
        self.assertEqual(doc["cache_dir"], "")
        self.assertEqual(doc["stats"], {"hits": 0, "misses": 0, "compiles": 0,
                                        "compile_errors": 0, "entries": 0, "bytes_on_disk": 0,
                                        "max_bytes": 0})

    def test_clear_removes_nothing(self):
        self.assertEqual(self.ctl("kernels", "clear").stdout, "removed 0 kernels\n")

    def test_warm_is_a_failed_precondition_on_cpu(self):
        path = self.write("specs.json", json.dumps(SPECS))
        p = self.ctl("kernels", "warm", path, ok=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("sparsectl: error: FAILED_PRECONDITION: %s: " % path, p.stderr)
        self.assertIn("the cpu backend compiles no kernels at run time", p.stderr)
        # From stdin too.
        p = self.ctl("kernels", "warm", "-", ok=False, stdin=json.dumps(SPECS))
        self.assertIn("FAILED_PRECONDITION: stdin: ", p.stderr)

    def test_warm_malformed_names_the_field(self):
        for text, field in (
                ('{"kernels": [{"kernel": "k", "params": {"tile": [1, 2]}}]}', "kernels[0].params.tile"),
                ('{"kernels": [{"params": {}}]}', "kernels[0].kernel"),
                ('{"kernels": {}}', "kernels must be an array"),
                ('{"kernels": [', "not valid JSON")):
            path = self.write("bad.json", text)
            p = self.ctl("kernels", "warm", path, ok=False)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("INVALID_ARGUMENT: %s: " % path, p.stderr)
            self.assertIn(field, p.stderr)
            self.assertIn("nothing compiled", p.stderr)

    def test_usage_errors(self):
        p = self.ctl("kernels", "warm", os.path.join(self.tmp, "missing.json"), ok=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("NOT_FOUND", p.stderr)
        self.assertEqual(self.ctl("kernels", ok=False).returncode, 2)
        self.assertEqual(self.ctl("kernels", "warm", ok=False).returncode, 2)
        self.assertEqual(self.ctl("kernels", "frob", ok=False).returncode, 2)

    def test_metrics(self):
        with urllib.request.urlopen("http://%s/metrics" % self.daemon.metrics, timeout=10) as r:
            text = r.read().decode()
        for name in ("sparsed_kernel_cache_hits_total", "sparsed_kernel_cache_misses_total",
                     "sparsed_kernel_compiles_total", "sparsed_kernel_compile_errors_total",
                     "sparsed_kernel_cache_bytes", "sparsed_kernel_cache_entries",
                     "sparsed_kernel_compile_seconds_count"):
            self.assertRegex(text, r"(?m)^%s 0$" % re.escape(name))
        self.assertIn("# TYPE sparsed_kernel_compile_seconds histogram", text)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    p.add_argument("--sparsectl", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
