#!/usr/bin/env python3
"""sparsectl against the real daemon: put, ls, info, spmm, get, rm, status,
convert, transpose, prune, inspect, errors; results compared with scipy and
with the references in ops_reference.py.

Test classes (ctest runs each under its own name, see CMakeLists.txt):
  SparsectlTest             put/get/ls/info/spmm/rm/status, errors
  ConvertCliTest            convert/transpose among dense, coo, csr; usage and request errors
  ConvertAllFormatsCliTest  convert/transpose to csc, bsr, nm
  PruneCliTest              prune --sparsity [--per-row], --nm, --block
  InspectCliTest            inspect text, --json, --spy PNG, --ascii
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import scipy.io
import scipy.sparse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ops_reference as ref  # noqa: E402
from daemon_util import Daemon, expected_backend  # noqa: E402

ARGS = None
ID = re.compile(r"t-[0-9a-f]{16}")


class CliCase(unittest.TestCase):
    """A daemon per test class and sparsectl pointed at it."""

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(ARGS.sparsed)
        cls.tmp = tempfile.mkdtemp(prefix="sparsectl-test-")

    @classmethod
    def tearDownClass(cls):
        assert cls.daemon.stop() == 0

    def ctl(self, *args, ok=True, env_addr=False):
        env = dict(os.environ)
        cmd = [ARGS.sparsectl]
        if env_addr:
            env["SPARSED_ADDR"] = self.daemon.address
        else:
            cmd += ["--server", self.daemon.address]
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, env=env, timeout=120)
        if ok:
            self.assertEqual(p.returncode, 0, "sparsectl %s failed:\n%s%s" % (args, p.stdout, p.stderr))
        return p

    def path(self, name):
        return os.path.join(self.tmp, name)


class SparsectlTest(CliCase):
    def test_put_spmm_get_matches_scipy(self):
        mtx = os.path.join(ARGS.data, "bcsstk13.mtx")
        a = scipy.sparse.csr_matrix(scipy.io.mmread(mtx), dtype=np.float64)
        out = self.ctl("put", mtx, "--name", "A13").stdout
        self.assertRegex(out, ID)
        rng = np.random.default_rng(11)
        b = rng.standard_normal((a.shape[1], 8)).astype(np.float32)
        np.save(self.path("b.npy"), b)
        self.ctl("put", self.path("b.npy"), "--name", "B13", env_addr=True)
        bias = rng.standard_normal(8).astype(np.float32)
        np.save(self.path("bias.npy"), bias)

        ls = self.ctl("ls").stdout
        self.assertIn("A13", ls)
        self.assertIn("B13", ls)
        info = self.ctl("info", "A13").stdout
        self.assertIn(str(a.nnz), info)
        self.assertIn("csr", info.lower())

        self.ctl("spmm", "A13", "B13", "--bias", self.path("bias.npy"), "--relu",
                 "--clamp", "1e6", "-o", self.path("c.npy"))
        got = np.load(self.path("c.npy"))
        want = np.minimum(np.maximum(a @ b.astype(np.float64) + bias, 0), 1e6)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())

        # Held result by name, then downloaded as .mtx is not meaningful for
        # dense; fetch as .npy. Transposed A on a square matrix.
        self.ctl("spmm", "A13", "B13", "--transpose-a", "--name", "C13t")
        self.ctl("get", "C13t", "-o", self.path("ct.npy"))
        np.testing.assert_allclose(np.load(self.path("ct.npy")), a.T @ b, rtol=1e-4,
                                   atol=1e-4 * np.abs(a.T @ b).max())

        # The sparse matrix round-trips through get as .mtx and as .npy.
        self.ctl("get", "A13", "-o", self.path("a.mtx"))
        # The file holds each float32 as its shortest round-trip decimal, so
        # compare after parsing back to float32.
        back = scipy.sparse.csr_matrix(scipy.io.mmread(self.path("a.mtx"))).astype(np.float32)
        self.assertEqual(back.nnz, a.nnz)
        self.assertEqual(abs(back - a.astype(np.float32)).max(), 0)
        self.ctl("get", "A13", "-o", self.path("a.npy"))
        np.testing.assert_array_equal(np.load(self.path("a.npy")), a.toarray().astype(np.float32))

        for name in ("A13", "B13", "C13t"):
            self.ctl("rm", name)
        self.assertNotIn("A13", self.ctl("ls").stdout)

    def test_formats_on_put(self):
        mtx = os.path.join(ARGS.data, "zenios.mtx")
        for fmt in ("csr", "coo", "dense"):
            out = self.ctl("put", mtx, "--format", fmt, "--name", "z-" + fmt).stdout
            self.assertRegex(out, ID)
            self.assertIn(fmt, self.ctl("info", "z-" + fmt).stdout.lower())
            self.ctl("get", "z-" + fmt, "-o", self.path("z-%s.npy" % fmt))
            want = scipy.io.mmread(mtx).toarray().astype(np.float32)
            np.testing.assert_array_equal(np.load(self.path("z-%s.npy" % fmt)), want)
            self.ctl("rm", "z-" + fmt)

    def test_half_precision_npy_in_and_out(self):
        rng = np.random.default_rng(5)
        x = rng.standard_normal((7, 9)).astype(np.float16)
        np.save(self.path("h.npy"), x)
        self.ctl("put", self.path("h.npy"), "--name", "h16")
        self.assertIn("f16", self.ctl("info", "h16").stdout.lower())
        self.ctl("get", "h16", "-o", self.path("h16-back.npy"))
        back = np.load(self.path("h16-back.npy"))
        self.assertEqual(back.dtype, np.float16)
        np.testing.assert_array_equal(back.view(np.uint16), x.view(np.uint16))
        # f32 in, held as bf16 (round to nearest even), out widened to f32.
        y = rng.standard_normal((5, 6)).astype(np.float32)
        np.save(self.path("y.npy"), y)
        self.ctl("put", self.path("y.npy"), "--dtype", "bf16", "--name", "ybf")
        self.assertIn("bf16", self.ctl("info", "ybf").stdout.lower())
        self.ctl("get", "ybf", "-o", self.path("ybf.npy"))
        got = np.load(self.path("ybf.npy"))
        self.assertEqual(got.dtype, np.float32)
        b = y.view(np.uint32).astype(np.uint64)
        rounded = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16 << 16).astype(np.uint32).view(np.float32)
        np.testing.assert_array_equal(got, rounded)
        self.ctl("rm", "h16", "ybf")

    def test_status(self):
        out = self.ctl("status").stdout
        self.assertIn("cpu", out)
        backend = re.search(r"^backend:\s+(\S+)$", out, re.M)
        self.assertIsNotNone(backend, out)
        if expected_backend() is not None:
            self.assertEqual(backend.group(1), expected_backend(), out)
        self.assertRegex(out, r"\[active\]", out)

    def test_version_json_and_where_the_daemon_keeps_things(self):
        import json
        p = subprocess.run([ARGS.sparsectl, "--version"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout.strip(), r"^sparsectl \d+\.\d+\.\d+$")
        self.assertEqual(p.stdout.split()[1], json.loads(
            self.ctl("--json", "status").stdout)["version"])  # the daemon's own version
        st = json.loads(self.ctl("status", "--json").stdout)
        self.assertEqual(st["backend"], expected_backend() or st["backend"])
        self.assertEqual(st["data_dir"], self.daemon.data_dir)
        self.assertEqual(st["metrics_address"], self.daemon.metrics)
        out = self.ctl("status").stdout
        self.assertIn("data dir:  " + self.daemon.data_dir, out)
        self.assertIn("http://%s/metrics" % self.daemon.metrics, out)
        m = scipy.sparse.random(7, 5, density=0.4, format="coo", random_state=3)
        scipy.io.mmwrite(self.path("j.mtx"), m)
        self.ctl("put", self.path("j.mtx"), "--name", "json-listed")
        listed = json.loads(self.ctl("ls", "json-", "--json").stdout)
        self.assertEqual([t["name"] for t in listed["tensors"]], ["json-listed"])
        self.assertEqual(listed["tensors"][0]["desc"]["shape"], ["7", "5"])  # int64 as strings
        self.assertIn("layers", json.loads(self.ctl("layer", "ls", "--json").stdout))

    def test_errors_are_clear_and_nonzero(self):
        p = self.ctl("info", "no-such-name", ok=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("NOT_FOUND", p.stderr)
        p = self.ctl("put", self.path("missing.mtx"), ok=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("missing.mtx", p.stderr)
        bad = self.path("bad.mtx")
        with open(bad, "w") as f:
            f.write("%%MatrixMarket matrix coordinate real general\n3 3 1\n4 1 1.0\n")
        p = self.ctl("put", bad, ok=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("bad.mtx:3:", p.stderr)  # file:line: message
        p = subprocess.run([ARGS.sparsectl, "--server", "127.0.0.1:1", "--timeout", "5", "ls"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("UNAVAILABLE", p.stderr)
        for cmd in ([], ["put"], ["get"], ["ls"], ["info"], ["rm"], ["spmm"], ["status"],
                    ["convert"], ["transpose"], ["prune"], ["inspect"]):
            h = subprocess.run([ARGS.sparsectl] + cmd + ["--help"], capture_output=True, text=True)
            self.assertEqual(h.returncode, 0, cmd)
            self.assertIn("Usage", h.stdout)


def random_matrix(rows, cols, density, seed):
    """float32 rows x cols with about `density` non-zeros (no explicit zeros)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((rows, cols)).astype(np.float32)
    a[rng.random((rows, cols)) >= density] = 0
    return a


class OpsCliCase(CliCase):
    def put(self, a, name, fmt="csr"):
        """Uploads dense `a` as FORMAT under `name` (via a .npy file)."""
        path = self.path(name + ".npy")
        np.save(path, a)
        out = self.ctl("put", path, "--name", name, "--format", fmt).stdout
        return ID.search(out).group(0)

    def get(self, ref_):
        path = self.path("got.npy")
        self.ctl("get", ref_, "-o", path)
        return np.load(path)

    def new_id(self, p):
        """The id a convert/transpose/prune printed on its first line."""
        first = p.stdout.splitlines()[0]
        self.assertRegex(first, "^" + ID.pattern + "$", p.stdout)
        return first

    def fails(self, code, *args):
        """Runs sparsectl expecting a daemon error CODE (exit 1); returns stderr."""
        p = self.ctl(*args, ok=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("error: " + code, p.stderr)
        return p.stderr

    def usage_error(self, *args):
        p = self.ctl(*args, ok=False)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        return p.stderr


class ConvertCliTest(OpsCliCase):
    def test_convert_dense_coo_csr(self):
        a = random_matrix(21, 16, 0.25, 1)
        a[3, :] = 0
        for src in ("dense", "coo", "csr"):
            sid = self.put(a, "cv-" + src, src)
            for to in ("dense", "coo", "csr"):
                with self.subTest(src=src, to=to):
                    p = self.ctl("convert", sid, "--to", to, "--name", "cv-%s-%s" % (src, to))
                    new = self.new_id(p)
                    self.assertIn("name=cv-%s-%s %s f32" % (src, to, to), p.stdout)
                    self.assertIn(to, self.ctl("info", new).stdout)
                    np.testing.assert_array_equal(self.get(new), a)
            np.testing.assert_array_equal(self.get(sid), a)  # the source stays
        p = self.ctl("convert", "cv-dense", "--to", "coo", "--index", "i64")
        self.assertIn("coo f32/i64 21x16 nnz=%d" % np.count_nonzero(a), p.stdout)

    def test_transpose(self):
        a = random_matrix(9, 14, 0.3, 2)
        for fmt in ("dense", "coo", "csr"):
            sid = self.put(a, "tr-" + fmt, fmt)
            new = self.new_id(self.ctl("transpose", sid, "--name", "tr-%s-t" % fmt))
            self.assertIn("14x9", self.ctl("info", "tr-%s-t" % fmt).stdout)
            np.testing.assert_array_equal(self.get(new), a.T)

    def test_bad_requests(self):
        self.put(random_matrix(6, 10, 0.5, 3), "bad-src")
        self.assertIn("not a format", self.usage_error("convert", "bad-src", "--to", "foo"))
        self.usage_error("convert", "bad-src", "--to", "bsr", "--block", "2,x")
        self.usage_error("convert", "bad-src", "--to", "nm", "--nm", "2-4")
        self.usage_error("convert", "bad-src", "--to", "csr", "--index", "i16")
        err = self.fails("INVALID_ARGUMENT", "convert", "bad-src", "--to", "csr", "--block", "2,2")
        self.assertIn("block = [2, 2] is only for to = BSR", err)
        err = self.fails("INVALID_ARGUMENT", "convert", "bad-src", "--to", "nm", "--nm", "3:4")
        self.assertIn("m = 4 does not divide the 10 columns", err)
        err = self.fails("INVALID_ARGUMENT", "convert", "bad-src", "--to", "bsr")
        self.assertIn("block is missing", err)
        err = self.fails("INVALID_ARGUMENT", "prune", "bad-src", "--sparsity", "1.5")
        self.assertIn("magnitude.sparsity = 1.5", err)
        err = self.fails("INVALID_ARGUMENT", "prune", "bad-src", "--nm", "3:4")
        self.assertIn("nm.m = 4", err)
        err = self.fails("INVALID_ARGUMENT", "prune", "bad-src", "--block", "0", "--sparsity", "0.5")
        self.assertIn("block.block", err)
        self.usage_error("prune", "bad-src")  # no mode
        self.usage_error("prune", "bad-src", "--block", "2")  # --block needs --sparsity
        self.usage_error("prune", "bad-src", "--nm", "2:4", "--sparsity", "0.5")
        self.usage_error("prune", "bad-src", "--per-row")
        for cmd in (["convert", "t-00000000000000aa", "--to", "csr"], ["transpose", "nope"],
                    ["prune", "nope", "--sparsity", "0.5"], ["inspect", "nope"],
                    ["inspect", "nope", "--spy", self.path("never.png")]):
            self.assertIn("not", self.fails("NOT_FOUND", *cmd).lower())
        self.assertFalse(os.path.exists(self.path("never.png")))
        self.usage_error("inspect", "bad-src", "--json", "--ascii")
        # Still serving.
        self.assertIn("backend:", self.ctl("status").stdout)
        self.assertIn("bad-src", self.ctl("ls").stdout)


class ConvertAllFormatsCliTest(OpsCliCase):
    """Needs the CSC/BSR/N:M kernels."""

    def test_convert_to_csc_bsr_nm_and_back(self):
        a = ref.prune_nm(random_matrix(13, 24, 0.7, 4).astype(np.float64), 2, 4).astype(np.float32)
        self.put(a, "af")
        for to, extra, shown in (("csc", [], "csc"), ("bsr", ["--block", "4,8"], "bsr (block 4x8)"),
                                 ("bsr", ["--block", "3"], "bsr (block 3x3)"),
                                 ("nm", ["--nm", "2:4"], "nm (2:4)")):
            with self.subTest(to=to, extra=extra):
                new = self.new_id(self.ctl("convert", "af", "--to", to, *extra))
                self.assertIn(shown, self.ctl("info", new).stdout)
                np.testing.assert_array_equal(self.get(new), a)
                back = self.new_id(self.ctl("convert", new, "--to", "csr"))
                np.testing.assert_array_equal(self.get(back), a)
                t = self.new_id(self.ctl("transpose", new)) if to != "nm" else None
                if t:
                    np.testing.assert_array_equal(self.get(t), a.T)


class PruneCliTest(OpsCliCase):
    """Needs the prune kernels."""

    def test_prune_modes_match_numpy(self):
        a = random_matrix(16, 24, 0.9, 5)
        a64 = a.astype(np.float64)
        self.put(a, "pa", "dense")
        for args, want, fmt in (
                (["--sparsity", "0.7"], ref.prune_magnitude(a64, 0.7), "csr"),
                (["--sparsity", "0.6", "--per-row"], ref.prune_magnitude(a64, 0.6, True), "csr"),
                (["--nm", "2:4"], ref.prune_nm(a64, 2, 4), "nm (2:4)"),
                (["--block", "4,8", "--sparsity", "0.5"], ref.prune_block(a64, 4, 8, 0.5),
                 "bsr (block 4x8)"),
                (["--block", "3", "--sparsity", "0.4"], ref.prune_block(a64, 3, 3, 0.4),
                 "bsr (block 3x3)")):
            with self.subTest(args=args):
                new = self.new_id(self.ctl("prune", "pa", *args))
                self.assertIn(fmt, self.ctl("info", new).stdout)
                np.testing.assert_array_equal(self.get(new), want)
        np.testing.assert_array_equal(self.get("pa"), a)


class InspectCliTest(OpsCliCase):
    """Needs the inspect kernels."""

    def field(self, text, key):
        m = re.search(r"^%s:\s+(.*)$" % re.escape(key), text, re.M)
        self.assertIsNotNone(m, "%s not in:\n%s" % (key, text))
        return m.group(1).strip()

    def test_text_and_json_match_scipy(self):
        mtx = os.path.join(ARGS.data, "bcsstk13.mtx")
        s = scipy.sparse.csr_matrix(scipy.io.mmread(mtx))
        s.sum_duplicates()
        self.ctl("put", mtx, "--name", "ins13")
        out = self.ctl("inspect", "ins13").stdout
        self.assertEqual(self.field(out, "format"), "csr")
        self.assertEqual(self.field(out, "dtype"), "f32")
        self.assertEqual(self.field(out, "index dtype"), "i32")
        self.assertEqual(self.field(out, "shape"), "%dx%d" % s.shape)
        self.assertEqual(int(self.field(out, "nnz")), s.nnz)
        self.assertEqual(int(self.field(out, "stored")), s.nnz)
        self.assertEqual(int(self.field(out, "nonzeros")), s.count_nonzero())
        self.assertAlmostEqual(float(self.field(out, "density")),
                               s.count_nonzero() / (s.shape[0] * s.shape[1]), delta=1e-6)
        self.assertEqual(int(self.field(out, "bytes").split()[0]),
                         4 * (s.shape[0] + 1) + 8 * s.nnz)
        m = re.match(r"min (\d+)\s+max (\d+)\s+mean (\S+)\s+std (\S+)",
                     self.field(out, "row length"))
        nz = np.diff(scipy.sparse.csr_matrix(s.toarray() != 0).indptr)
        self.assertEqual((int(m.group(1)), int(m.group(2))), (nz.min(), nz.max()))
        self.assertAlmostEqual(float(m.group(3)), nz.mean(), delta=1e-5 * nz.mean())
        self.assertAlmostEqual(float(m.group(4)), nz.std(), delta=1e-5 * nz.std())
        hist = re.findall(r"\[(\d+), (\d+)\)\s+(\d+)", out)
        edges = [int(h[0]) for h in hist] + [int(hist[-1][1])]
        counts = [int(h[2]) for h in hist]
        self.assertEqual(edges, ref.row_stats(s.toarray() != 0)["edges"])
        self.assertEqual(counts, list(np.histogram(nz, bins=edges)[0]))

        j = json.loads(self.ctl("inspect", "ins13", "--json").stdout)
        self.assertEqual((j["format"], j["shape"], j["nnz"]), ("csr", list(s.shape), s.nnz))
        self.assertEqual(j["nonzeros"], s.count_nonzero())
        self.assertEqual(j["row_lengths"]["max"], nz.max())
        self.assertAlmostEqual(j["row_lengths"]["std"], nz.std(), places=9)
        self.assertEqual(j["row_lengths"]["counts"], counts)

    def test_block_and_nm_shown(self):
        a = ref.prune_nm(random_matrix(12, 16, 0.8, 6).astype(np.float64), 2, 4).astype(np.float32)
        self.put(a, "insf")
        bsr = self.new_id(self.ctl("convert", "insf", "--to", "bsr", "--block", "4,8"))
        out = self.ctl("inspect", bsr).stdout
        self.assertEqual(self.field(out, "block"), "4 x 8")
        blocks = len({(r // 4, c // 8) for r, c in zip(*np.nonzero(a))})
        self.assertEqual(int(self.field(out, "stored")), blocks * 32)
        self.assertEqual(int(self.field(out, "nonzeros")), np.count_nonzero(a))
        j = json.loads(self.ctl("inspect", bsr, "--json").stdout)
        self.assertEqual(j["block"], [4, 8])
        nm = self.new_id(self.ctl("convert", "insf", "--to", "nm", "--nm", "2:4"))
        out = self.ctl("inspect", nm).stdout
        self.assertEqual(self.field(out, "n:m"), "2:4")
        self.assertEqual(int(self.field(out, "stored")), 12 * 4 * 2)
        j = json.loads(self.ctl("inspect", nm, "--json").stdout)
        self.assertEqual((j["n"], j["m"]), (2, 4))

    def check_png(self, path, mask, max_cells=512):
        rows, cols = mask.shape
        cr, cc = math.ceil(rows / min(rows, max_cells)), math.ceil(cols / min(cols, max_cells))
        with open(path, "rb") as f:
            width, height, pixels = ref.decode_png(f.read())
        self.assertEqual((height, width), (math.ceil(rows / cr), math.ceil(cols / cc)))
        counts = ref.spy_counts(mask, cr, cc)
        for i in range(height):
            for j in range(width):
                n = counts[i, j]
                want = 255 if n == 0 else \
                    round(224 * (1 - n / ref.cell_area(rows, cols, cr, cc, i, j)))
                self.assertEqual(pixels[i][j], want, (i, j, n))
        return width, height

    def test_spy_png_and_ascii(self):
        # Small: one pixel per entry, black where non-zero.
        a = random_matrix(37, 40, 0.2, 7)
        self.put(a, "spy-small")
        out = self.ctl("inspect", "spy-small", "--spy", self.path("small.png")).stdout
        self.assertIn("40x37 pixels", out)
        self.assertEqual(self.check_png(self.path("small.png"), a != 0), (40, 37))
        # Large: 2003 x 2003 binned into 501 x 501 cells of 4 x 4.
        mtx = os.path.join(ARGS.data, "bcsstk13.mtx")
        s = scipy.sparse.csr_matrix(scipy.io.mmread(mtx))
        s.sum_duplicates()
        self.ctl("put", mtx, "--name", "spy13")
        out = self.ctl("inspect", "spy13", "--spy", self.path("big.png"), "--ascii").stdout
        self.assertEqual(self.check_png(self.path("big.png"), s.toarray() != 0), (501, 501))
        # ASCII: at most 32 x 64 cells; 2003 rows in cells of 63 -> 32 lines of 63.
        lines = [l for l in out.splitlines() if l.startswith("|")]
        self.assertEqual(len(lines), 32, out)
        cr, cc = math.ceil(2003 / 32), math.ceil(2003 / 64)
        counts = ref.spy_counts(s.toarray() != 0, cr, cc)
        shades = " .:-=+*#%@"
        for i, line in enumerate(lines):
            self.assertEqual(len(line), 63 + 2)
            for j, ch in enumerate(line[1:-1]):
                n = counts[i, j]
                d = n / ref.cell_area(2003, 2003, cr, cc, i, j)
                self.assertEqual(ch, " " if n == 0 else shades[min(9, max(1, math.ceil(9 * d)))])
        # A matrix smaller than the terminal grid: one character per entry.
        out = self.ctl("inspect", "spy-small", "--ascii").stdout
        lines = [l[1:-1] for l in out.splitlines() if l.startswith("|")]
        self.assertEqual(len(lines), 19)  # 37 rows in cells of 2
        self.assertEqual({len(l) for l in lines}, {40})
        # --json with --spy describes the image.
        j = json.loads(self.ctl("inspect", "spy13", "--json", "--spy", self.path("j.png")).stdout)
        self.assertEqual((j["spy"]["height"], j["spy"]["width"], j["spy"]["cell_rows"]),
                         (501, 501, 4))
        # Nothing to draw for an empty shape.
        np.save(self.path("empty.npy"), np.zeros((0, 4), np.float32))
        self.ctl("put", self.path("empty.npy"), "--name", "spy-empty")
        err = self.fails("FAILED_PRECONDITION", "inspect", "spy-empty", "--spy",
                         self.path("empty.png"))
        self.assertIn("no spy image", err)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    p.add_argument("--sparsectl", required=True)
    p.add_argument("--data", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
