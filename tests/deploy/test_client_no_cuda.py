#!/usr/bin/env python3
"""The client binaries carry no CUDA (issue 16: a core library without CUDA,
backends apart): neither a CUDA library among their NEEDED entries nor a CUDA
runtime or cuSPARSE symbol linked in statically. The daemon is the control:
when the build has its CUDA part, the same checks must find CUDA there."""
import argparse
import re
import subprocess
import sys
import unittest

ARGS = None
CUDA_LIB = re.compile(r"lib(cudart|cusparse|cublas|nvrtc|cuda)\b")
CUDA_SYMBOL = re.compile(r"^(cuda[A-Z]\w*|cusparse[A-Z]\w*|nvrtc[A-Z]\w*)$")


def needed(path):
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True, text=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out.stdout)


def cuda_symbols(path):
    out = subprocess.run(["nm", "--defined-only", path], check=True, capture_output=True,
                         text=True).stdout
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    return sorted({n for n in names if CUDA_SYMBOL.match(n)})


class ClientNoCudaTest(unittest.TestCase):
    def check_clean(self, path):
        libs = [lib for lib in needed(path) if CUDA_LIB.search(lib)]
        self.assertEqual(libs, [], f"{path} needs CUDA libraries")
        syms = cuda_symbols(path)
        self.assertEqual(syms, [], f"{path} defines CUDA symbols: {syms[:5]}")

    def test_sparsectl(self):
        self.check_clean(ARGS.sparsectl)

    def test_load_tool(self):
        self.check_clean(ARGS.load)

    def test_the_checks_find_cuda_in_the_daemon(self):
        if not ARGS.daemon_has_cuda:
            self.skipTest("this build has no CUDA part")
        self.assertTrue(any(CUDA_LIB.search(lib) for lib in needed(ARGS.sparsed)))
        self.assertIn("cudaMallocAsync", cuda_symbols(ARGS.sparsed))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsectl", required=True)
    p.add_argument("--load", required=True)
    p.add_argument("--sparsed", required=True)
    p.add_argument("--daemon-has-cuda", action="store_true")
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest)
