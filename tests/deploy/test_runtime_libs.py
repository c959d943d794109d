#!/usr/bin/env python3
"""The container images' runtime stages install every shared library the
binaries need (issue 19: the image lacked libpng16-16, so sparsectl and with
it the HEALTHCHECK failed to load).

Resolves each binary's libraries with ldd (the transitive closure of its
NEEDED entries) and requires, for each image, that the runtime stage's
`apt-get install` list (with the stages it is built FROM) covers it:

- Debian libraries: the package `dpkg -S` names, or one every debian:12 image
  has (BASE);
- CUDA libraries (Dockerfile.gpu only): the NVIDIA package that
  deploy_lib.CUDA_PACKAGES maps the soname to (e.g. libcusparse.so.12 ->
  libcusparse-13-0), including the libraries those load with dlopen
  (DLOPENED); the driver's own libraries (libcuda.so.1) come from the host.

The CPU image (Dockerfile) is built with -DSPARSED_WITH_CUDA=OFF, so CUDA
libraries of a CUDA build here are not its concern (checked: the flag is
there). Where the binaries here were built without CUDA, the CUDA half of
the GPU image check is skipped (and says so)."""

import argparse
import functools
import glob
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_lib  # noqa: E402

ROOT = deploy_lib.ROOT
# Packages every debian:12 image has (Priority: required / essential).
BASE = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libzstd1", "liblzma5", "libcrypt1",
        "libselinux1", "libpcre2-8-0", "libgmp10", "libacl1", "libattr1", "libbz2-1.0"}
ARGS = None


@functools.lru_cache(maxsize=None)
def ldd(binary):
    """((soname, resolved path or None), ...) of every library `binary` loads."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if not m:
            continue  # linux-vdso, the dynamic loader itself (libc6)
        soname, path = m.group(1), m.group(2)
        libs.append((soname, path if path.startswith("/") else None))
    return tuple(libs)


@functools.lru_cache(maxsize=None)
def debian_package(path):
    """The Debian package owning `path`, or None."""
    path = os.path.realpath(path)
    for candidate in (path, path.replace("/usr/lib/", "/lib/", 1) if path.startswith("/usr/lib/")
                      else path.replace("/lib/", "/usr/lib/", 1)):
        owner = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if owner.returncode == 0:
            return owner.stdout.split(":")[0].strip()
    return None


def dlopened(soname, path):
    """Libraries `soname` loads at run time that ldd cannot see."""
    out = []
    for pattern in deploy_lib.DLOPENED.get(soname, []):
        if path is None:
            continue
        # Take the version of the copy next to it (libnvrtc-builtins.so.13.0).
        found = glob.glob(os.path.join(os.path.dirname(os.path.realpath(path)),
                                       pattern.format(minor="*")))
        out += [(os.path.basename(f), f) for f in found if re.search(r"\.so\.\d+\.\d+$", f)]
        if not found:
            out.append((pattern.format(minor="?"), None))
    return out


def required(binary, image_has_cuda, cuda_pkg):
    """{package: [library, ...]} the runtime stage must install for `binary`;
    "<no package>: ..." entries for libraries nothing maps."""
    needed = {}
    libs = list(ldd(binary))
    libs += [extra for soname, path in libs for extra in dlopened(soname, path)]
    for soname, path in libs:
        if deploy_lib.is_cuda_library(soname, path):
            if not image_has_cuda or soname in deploy_lib.HOST_DRIVER_LIBS:
                continue
            package = deploy_lib.cuda_package(soname, cuda_pkg)
            key = package or "<no package: a CUDA library deploy_lib.CUDA_PACKAGES does not map>"
        elif path is None:
            key = "<no package: not found by ldd>"
        else:
            key = debian_package(path) or "<no package: dpkg -S knows no owner>"
        needed.setdefault(key, []).append(path or soname)
    return needed


def built_with_cuda(binary):
    return any(deploy_lib.is_cuda_library(s, p) and s not in deploy_lib.HOST_DRIVER_LIBS
               for s, p in ldd(binary))


class RuntimeLibrariesTest(unittest.TestCase):
    def binaries(self):
        present = [b for b in (ARGS.sparsed, ARGS.sparsectl) if os.path.exists(b)]
        if not present:
            self.skipTest("no binaries built (%s, %s)" % (ARGS.sparsed, ARGS.sparsectl))
        return present

    def check_image(self, dockerfile, image_has_cuda, cuda_pkg=None):
        df = deploy_lib.Dockerfile(os.path.join(ROOT, dockerfile))
        installed = df.apt_packages(df.stage("runtime")) | BASE
        self.assertIn("libgrpc++1.51", installed, "%s: the parse found no install line" % dockerfile)
        for binary in self.binaries():
            needed = required(binary, image_has_cuda, cuda_pkg)
            self.assertTrue(needed, binary)
            missing = {p: libs for p, libs in needed.items() if p not in installed}
            self.assertEqual(missing, {}, "%s: %s needs packages its runtime stage does not "
                             "install" % (dockerfile, os.path.basename(binary)))
            print("%s: %s needs %s" % (dockerfile, os.path.basename(binary),
                                       ", ".join(sorted(needed))))

    def test_cpu_image(self):
        df = deploy_lib.Dockerfile(os.path.join(ROOT, "Dockerfile"))
        builds = " ".join(df.instructions(df.stage("builder"), "RUN"))
        # Only then may the CUDA libraries of a CUDA build here be left out.
        self.assertIn("-DSPARSED_WITH_CUDA=OFF", builds,
                      "the CPU image must build without CUDA (it installs no CUDA library)")
        self.check_image("Dockerfile", image_has_cuda=False)

    def test_gpu_image(self):
        df = deploy_lib.Dockerfile(os.path.join(ROOT, "Dockerfile.gpu"))
        version = df.global_args.get("CUDA_VERSION", "")
        cuda_pkg = df.global_args.get("CUDA_PKG", "")
        # The mapping's sonames are those of one CUDA major version.
        self.assertEqual(version.split(".")[0], str(deploy_lib.CUDA_MAJOR),
                         "Dockerfile.gpu's CUDA_VERSION is not the major version "
                         "deploy_lib.CUDA_PACKAGES maps")
        self.assertEqual(cuda_pkg, version.replace(".", "-"))
        runtime = df.stage("runtime")
        # NVIDIA's packages install into a directory the loader must be told.
        self.assertIn("/usr/local/cuda-%s/targets/x86_64-linux/lib" % version,
                      " ".join(df.instructions(runtime, "RUN")))
        self.check_image("Dockerfile.gpu", image_has_cuda=True, cuda_pkg=cuda_pkg)
        if not built_with_cuda(ARGS.sparsed):
            self.skipTest("%s was built without CUDA here: the Debian libraries of "
                          "Dockerfile.gpu were checked, its CUDA libraries were not"
                          % ARGS.sparsed)

    def test_mapping_against_local_toolkit(self):
        """Each CUDA library the build here loads is in the mapping, and the
        toolkit it comes from has the CUDA major version the mapping is for."""
        if not os.path.exists(ARGS.sparsed) or not built_with_cuda(ARGS.sparsed):
            self.skipTest("no CUDA build of sparsed here")
        for soname, path in ldd(ARGS.sparsed):
            if not deploy_lib.is_cuda_library(soname, path):
                continue
            self.assertTrue(soname in deploy_lib.CUDA_PACKAGES or
                            soname in deploy_lib.HOST_DRIVER_LIBS, soname)
            m = re.search(r"cuda-(\d+)\.(\d+)", os.path.realpath(path or ""))
            if m:
                self.assertEqual(int(m.group(1)), deploy_lib.CUDA_MAJOR, path)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    p.add_argument("--sparsectl", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
