#!/usr/bin/env python3
"""sparsectl tune against the real daemon (CPU backend): import, ls, export,
persistence across a restart, clear, malformed input, corrupt file, /metrics.
Expected values come from the hand-written JSON below, parsed with Python's json."""

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
from daemon_util import Daemon  # noqa: E402

ARGS = None

# Two entries, deliberately not in key order.
TUNE = {
    "version": 1,
    "entries": [
        {"key": "spmm/csr/f32/m=2003,n=32,nnz=83883/cuda:0", "variant": "row_split_v4",
         "timings_ms": {"row_split_v4": 0.0625, "merge_path": 0.09, "cusparse": 0.071},
         "created_unix_ms": 1700000000123},
        {"key": "spmm/csr/bf16/m=100,n=8,nnz=500/cuda:0", "variant": "cusparse",
         "timings_ms": {"cusparse": 1.5}, "created_unix_ms": 1700000000456},
    ],
}


def by_key(doc):
    return sorted(doc["entries"], key=lambda e: e["key"])


class TuneCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sparsectl-tune-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.daemon = None

    def tearDown(self):
        if self.daemon is not None:
            self.daemon.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self):
        if self.daemon is not None:
            self.assertEqual(self.daemon.stop(), 0)
        self.daemon = Daemon(ARGS.sparsed, data_dir=self.data_dir)

    def ctl(self, *args, ok=True):
        p = subprocess.run([ARGS.sparsectl, "--server", self.daemon.address] + list(args),
                           capture_output=True, text=True, timeout=60)
        if ok:
            self.assertEqual(p.returncode, 0, "sparsectl %s failed:\n%s%s" % (args, p.stdout, p.stderr))
        return p

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def metric(self, name):
        with urllib.request.urlopen("http://%s/metrics" % self.daemon.metrics, timeout=10) as r:
            text = r.read().decode()
        m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
        self.assertIsNotNone(m, "%s not in /metrics:\n%s" % (name, text))
        return float(m.group(1))

    def ls_rows(self):
        """tune ls as {key: [variant, best_ms, candidates]} and the footer fields."""
        out = self.ctl("tune", "ls").stdout
        lines = out.splitlines()
        rows = {}
        if lines[0].split() == ["KEY", "VARIANT", "BEST_MS", "CANDIDATES"]:
            for line in lines[1:]:
                if not line.strip():
                    break
                cols = line.split()
                rows[cols[0]] = cols[1:]
        else:
            self.assertEqual(lines[0], "(no entries)")
        footer = dict(re.findall(r"(\w+): (\S+)", [l for l in lines if l.startswith("db: ")][0]))
        return rows, footer

    def check_ls_shows(self, doc):
        rows, footer = self.ls_rows()
        want = {e["key"]: [e["variant"], "%.4g" % e["timings_ms"][e["variant"]],
                           str(len(e["timings_ms"]))] for e in doc["entries"]}
        self.assertEqual(rows, want)
        self.assertEqual(footer["db"], os.path.join(self.data_dir, "tune.json"))
        self.assertEqual(footer["entries"], str(len(doc["entries"])))
        return footer

    def export(self):
        out = self.path("export.json")
        self.ctl("tune", "export", out)
        with open(out) as f:
            return json.load(f)

    def test_import_ls_export_restart_clear(self):
        self.start()
        rows, footer = self.ls_rows()
        self.assertEqual(rows, {})
        self.assertEqual(footer["entries"], "0")
        self.assertEqual(self.metric("sparsed_tune_db_entries"), 0)

        src = self.write("tune-in.json", json.dumps(TUNE, indent=1))
        out = self.ctl("tune", "import", src).stdout
        self.assertIn("imported 2 entries", out)
        footer = self.check_ls_shows(TUNE)
        for counter in ("hits", "misses", "trials"):
            self.assertEqual(footer[counter], "0")  # nothing tuned on the CPU backend
        self.assertEqual(self.metric("sparsed_tune_db_entries"), 2)
        self.assertEqual(self.metric("sparsed_tune_db_hits_total"), 0)
        self.assertEqual(self.metric("sparsed_tune_db_misses_total"), 0)
        self.assertEqual(self.metric("sparsed_tune_trials_total"), 0)

        # export round-trips: same document as the import, to a file and to stdout.
        exported = self.export()
        self.assertEqual(exported["version"], 1)
        self.assertEqual(by_key(exported), by_key(TUNE))
        self.assertEqual(json.loads(self.ctl("tune", "export", "-").stdout), exported)
        # The daemon's file is the same complete JSON.
        with open(os.path.join(self.data_dir, "tune.json")) as f:
            self.assertEqual(by_key(json.load(f)), by_key(TUNE))

        # Persistence: a new daemon on the same data dir has the entries.
        self.start()
        self.check_ls_shows(TUNE)
        self.assertEqual(by_key(self.export()), by_key(TUNE))
        self.assertEqual(self.metric("sparsed_tune_db_entries"), 2)

        # Importing again with a changed entry replaces it, adds nothing else.
        changed = json.loads(json.dumps(TUNE))
        changed["entries"] = [dict(TUNE["entries"][1], variant="csr_vector",
                                   timings_ms={"csr_vector": 0.5, "cusparse": 1.5})]
        self.ctl("tune", "import", self.write("changed.json", json.dumps(changed)))
        merged = {"version": 1, "entries": [TUNE["entries"][0], changed["entries"][0]]}
        self.check_ls_shows(merged)
        self.assertEqual(by_key(self.export()), by_key(merged))

        out = self.ctl("tune", "clear").stdout
        self.assertIn("removed 2 entries", out)
        rows, footer = self.ls_rows()
        self.assertEqual(rows, {})
        self.assertEqual(footer["entries"], "0")
        self.assertEqual(self.metric("sparsed_tune_db_entries"), 0)
        self.assertEqual(self.export()["entries"], [])
        self.start()
        self.assertEqual(self.ls_rows()[0], {})

    def test_malformed_imports_fail_and_import_nothing(self):
        self.start()
        self.ctl("tune", "import", self.write("good.json", json.dumps(TUNE)))
        bad = json.loads(json.dumps(TUNE))
        bad["entries"].append({"key": "k3", "variant": "v", "timings_ms": {"v": -1}})
        cases = [
            (self.write("neg.json", json.dumps(bad)), ["INVALID_ARGUMENT", "neg.json", "entry 2",
                                                       "timings_ms.v", "non-negative"]),
            (self.write("novariant.json", json.dumps(
                {"version": 1, "entries": [{"key": "x", "timings_ms": {}}]})),
             ["INVALID_ARGUMENT", "entry 0", "variant must be a non-empty string"]),
            (self.write("trunc.json", json.dumps(TUNE)[:40]), ["INVALID_ARGUMENT", "not valid JSON"]),
            (self.write("v2.json", json.dumps({"version": 2, "entries": []})),
             ["INVALID_ARGUMENT", "version must be 1"]),
            (self.path("missing.json"), ["missing.json"]),
        ]
        for path, words in cases:
            p = self.ctl("tune", "import", path, ok=False)
            self.assertNotEqual(p.returncode, 0, path)
            for w in words:
                self.assertIn(w, p.stderr, path)
        self.check_ls_shows(TUNE)  # nothing from the bad files

    def test_corrupt_file_is_moved_aside_at_start(self):
        os.makedirs(self.data_dir)
        db = os.path.join(self.data_dir, "tune.json")
        with open(db, "w") as f:
            f.write('{"version": 1, "entries": [')
        self.start()
        out = self.ctl("tune", "ls").stdout
        self.assertIn("(no entries)", out)
        self.assertIn("warning:", out)
        self.assertIn("tune.json.corrupt", out)
        with open(db + ".corrupt") as f:
            self.assertEqual(f.read(), '{"version": 1, "entries": [')

    def test_help_and_usage(self):
        for cmd in (["tune"], ["tune", "ls"], ["tune", "export"], ["tune", "import"],
                    ["tune", "clear"]):
            h = subprocess.run([ARGS.sparsectl] + cmd + ["--help"], capture_output=True, text=True)
            self.assertEqual(h.returncode, 0, cmd)
            self.assertIn("Usage", h.stdout)
        p = subprocess.run([ARGS.sparsectl, "tune"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([ARGS.sparsectl, "tune", "export"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("FILE", p.stderr)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    p.add_argument("--sparsectl", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
