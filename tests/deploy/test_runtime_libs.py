#!/usr/bin/env python3
"""The container's runtime stage installs every shared library the binaries
need (issue 19: the image lacked libpng16-16, so sparsectl and with it the
HEALTHCHECK failed to load). Resolves each binary's libraries with ldd, maps
each to its Debian package with dpkg -S, and checks that the Dockerfile's
runtime stage installs that package (or that debian:12 has it already).
Libraries from /usr/local/cuda belong to the GPU image, not this one."""

import argparse
import os
import re
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Packages every debian:12 image has (Priority: required / essential).
BASE = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libzstd1", "liblzma5", "libcrypt1",
        "libselinux1", "libpcre2-8-0", "libgmp10", "libacl1", "libattr1", "libbz2-1.0"}
ARGS = None


def runtime_packages(dockerfile):
    """Packages apt-get installs in the stage named runtime."""
    text = open(dockerfile).read()
    stage = text[text.index("AS runtime"):]
    stage = stage[:stage.index("\nFROM ")] if "\nFROM " in stage else stage
    packages = set()
    for cmd in re.findall(r"apt-get install([^&]*)", stage.replace("\\\n", " ")):
        packages |= {w for w in cmd.split() if not w.startswith("-")}
    return packages


def needed_packages(binary):
    """{package: [library path, ...]} for the shared libraries of `binary`."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    needed = {}
    for line in out.splitlines():
        m = re.search(r"=> (/\S+)", line)
        if not m or m.group(1).startswith("/usr/local/cuda"):
            continue
        path = os.path.realpath(m.group(1))
        owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if owner.returncode != 0:  # dpkg knows the /lib or /usr/lib spelling
            alt = path.replace("/usr/lib/", "/lib/", 1) if path.startswith("/usr/lib/") \
                else path.replace("/lib/", "/usr/lib/", 1)
            owner = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True)
        if owner.returncode != 0:
            needed.setdefault("<no package>", []).append(path)
            continue
        package = owner.stdout.split(":")[0].strip()
        needed.setdefault(package, []).append(path)
    return needed


class RuntimeLibrariesTest(unittest.TestCase):
    def test_every_library_is_installed_in_the_runtime_stage(self):
        installed = runtime_packages(os.path.join(ROOT, "Dockerfile")) | BASE
        self.assertIn("libgrpc++1.51", installed)  # the parse found the install line
        for binary in (ARGS.sparsed, ARGS.sparsectl):
            needed = needed_packages(binary)
            self.assertTrue(needed, binary)
            missing = {p: libs for p, libs in needed.items() if p not in installed}
            self.assertEqual(missing, {}, "%s needs packages the runtime stage does not "
                             "install" % os.path.basename(binary))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    p.add_argument("--sparsectl", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
