"""Helpers shared by the deploy tests (test_runtime_libs.py, test_manifests.py):
a small Dockerfile reader (stages, ARG substitution, apt-get install lists,
ENV, COPY, ENTRYPOINT, HEALTHCHECK) and what the built daemon accepts
(flags and SPARSED_* variables from `--help`)."""

import json
import os
import re
import shlex
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# NVIDIA's CUDA libraries by soname -> the package of NVIDIA's Debian 12 CUDA
# repository (developer.download.nvidia.com/compute/cuda/repos/debian12) that
# installs it, "{pkg}" being Dockerfile.gpu's CUDA_PKG (13-0 for CUDA 13.0).
# Packages are named after the toolkit version, sonames after each library's
# own version: CUDA 13.0 ships cuSPARSE 12.6 (libcusparse.so.12), cuFFT 12,
# cuRAND 10. A library of /usr/local/cuda that is not listed here fails the
# test: add it (and its package to Dockerfile.gpu's runtime stage).
CUDA_MAJOR = 13
CUDA_PACKAGES = {
    "libcudart.so.13": "cuda-cudart-{pkg}",
    "libcusparse.so.12": "libcusparse-{pkg}",
    "libnvJitLink.so.13": "libnvjitlink-{pkg}",
    "libnvrtc.so.13": "cuda-nvrtc-{pkg}",
    "libnvrtc-builtins.so.13.0": "cuda-nvrtc-{pkg}",
    "libnvrtc-builtins.so.13.1": "cuda-nvrtc-{pkg}",
    "libnvrtc-builtins.so.13.2": "cuda-nvrtc-{pkg}",
    "libcublas.so.13": "libcublas-{pkg}",
    "libcublasLt.so.13": "libcublas-{pkg}",
    "libcufft.so.12": "libcufft-{pkg}",
    "libcurand.so.10": "libcurand-{pkg}",
    "libcusolver.so.12": "libcusolver-{pkg}",
    "libnvvm.so.4": "libnvvm-{pkg}",
}
# Provided by the host's driver, mounted into the container by the NVIDIA
# Container Toolkit (NVIDIA_DRIVER_CAPABILITIES=compute,utility): never
# installed in an image.
HOST_DRIVER_LIBS = {"libcuda.so.1", "libnvidia-ml.so.1", "libnvidia-ptxjitcompiler.so.1"}
# Loaded with dlopen, so ldd does not list them: library -> what it loads.
# (The statically linked CUDA runtime loads libcuda.so.1, the host's.)
DLOPENED = {"libnvrtc.so.13": ["libnvrtc-builtins.so.{minor}"]}


def cuda_package(soname, pkg):
    """NVIDIA package of a CUDA soname, or None."""
    p = CUDA_PACKAGES.get(soname)
    return p.format(pkg=pkg) if p else None


def is_cuda_library(soname, path):
    return soname in CUDA_PACKAGES or soname in HOST_DRIVER_LIBS or (
        path is not None and "/cuda" in os.path.realpath(path))


# ------------------------------------------------------------ Dockerfiles --

class Stage:
    def __init__(self, index, base, name):
        self.index, self.base, self.name = index, base, name
        self.args = {}          # ARG values in this stage
        self.instructions = []  # (KEYWORD, text with ARGs substituted)


class Dockerfile:
    """Stages of a Dockerfile with ARG defaults substituted."""

    def __init__(self, path):
        self.path = path
        with open(path) as f:
            text = f.read()
        lines = [l for l in text.splitlines() if not l.lstrip().startswith("#")]
        joined = re.sub(r"\\\n", " ", "\n".join(lines))
        self.global_args = {}
        self.stages = []
        for line in joined.splitlines():
            line = line.strip()
            if not line:
                continue
            keyword, _, rest = line.partition(" ")
            keyword, rest = keyword.upper(), rest.strip()
            stage = self.stages[-1] if self.stages else None
            if keyword == "ARG":
                name, eq, value = rest.partition("=")
                scope = stage.args if stage else self.global_args
                if eq:
                    scope[name] = value.strip('"')
                else:
                    scope[name] = self.global_args.get(name, "")
                continue
            if keyword == "FROM":
                words = self.sub(rest, self.global_args).split()
                name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
                self.stages.append(Stage(len(self.stages), words[0], name))
                continue
            if stage is None:
                raise ValueError("%s: %s before FROM" % (path, keyword))
            stage.instructions.append((keyword, self.sub(rest, stage.args)))

    @staticmethod
    def sub(text, args):
        def value(m):
            name = m.group(1) or m.group(2)
            return args.get(name, m.group(0))
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)

    def stage(self, name):
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError("%s has no stage %s" % (self.path, name))

    @property
    def final(self):
        return self.stages[-1]

    def chain(self, stage):
        """The stage and the stages it is built FROM, nearest first."""
        out = [stage]
        while True:
            parent = [s for s in self.stages if s.name and s.name == out[-1].base]
            if not parent:
                return out
            out.append(parent[0])

    def instructions(self, stage, keyword):
        """Texts of `keyword` in the stages the stage builds on, farthest
        first, then in the stage itself, in file order."""
        return [text for s in reversed(self.chain(stage))
                for k, text in s.instructions if k == keyword]

    def apt_packages(self, stage):
        """Packages `apt-get install` installs in the stage or the stages it builds on."""
        packages = set()
        for run in self.instructions(stage, "RUN"):
            for command in re.split(r"&&|;|\|\|?", run):
                words = command.split()
                for i, w in enumerate(words[:-1]):
                    if w == "apt-get" and words[i + 1] == "install":
                        packages |= {p.split("=")[0] for p in words[i + 2:]
                                     if not p.startswith("-")}
        return packages

    def env(self, stage):
        """ENV of the stage (and those it builds on): {name: value}."""
        out = {}
        for text in self.instructions(stage, "ENV"):
            words = shlex.split(text)
            if words and "=" not in words[0]:  # legacy `ENV NAME value`
                out[words[0]] = " ".join(words[1:])
                continue
            for w in words:
                name, _, value = w.partition("=")
                out[name] = value
        return out

    def exec_form(self, stage, keyword):
        """The JSON exec form of ENTRYPOINT/CMD (last one wins), or None."""
        texts = self.instructions(stage, keyword)
        return json.loads(texts[-1]) if texts else None

    def healthcheck(self, stage):
        texts = self.instructions(stage, "HEALTHCHECK")
        if not texts:
            return None
        m = re.search(r"\bCMD\s+(\[.*\])", texts[-1])
        return json.loads(m.group(1)) if m else None

    def copies(self, stage):
        """[(from stage or None, [sources], destination)] of COPY/ADD in this stage."""
        out = []
        for keyword, text in stage.instructions:
            if keyword not in ("COPY", "ADD"):
                continue
            words = text.split()
            source_stage = None
            while words and words[0].startswith("--"):
                if words[0].startswith("--from="):
                    source_stage = words[0][len("--from="):]
                words = words[1:]
            out.append((source_stage, words[:-1], words[-1]))
        return out

    def installed_files(self, stage):
        """Paths COPY puts into the stage: {destination path: (from, source)}."""
        files = {}
        for source_stage, sources, dest in self.copies(stage):
            for src in sources:
                target = os.path.join(dest, os.path.basename(src)) if dest.endswith("/") else dest
                files[target] = (source_stage, src)
        return files


# ------------------------------------------------------- what sparsed takes --

def daemon_options(sparsed):
    """({--flag: env var or None}, {SPARSED_* env var}) from `sparsed --help`."""
    out = subprocess.run([sparsed, "--help"], capture_output=True, text=True, check=True).stdout
    flags, envs = {}, set()
    for line in out.splitlines():
        m = re.match(r"\s+(?:-\w,)?(--[\w-]+)", line)
        if m:
            flags[m.group(1)] = None
    # Descriptions wrap: find "--flag ... (env SPARSED_X)" across lines.
    for m in re.finditer(r"(--[\w-]+)[^\n]*(?:\n {20,}[^\n]*)*?\(env (SPARSED_\w+)\)", out):
        flags[m.group(1)] = m.group(2)
        envs.add(m.group(2))
    for m in re.finditer(r"\$(SPARSED_\w+)", out):  # --config's $SPARSED_CONFIG
        envs.add(m.group(1))
    return flags, envs


def client_env(sparsectl):
    """SPARSED_* variables sparsectl reads (`default: $SPARSED_ADDR`)."""
    out = subprocess.run([sparsectl, "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"\$(SPARSED_\w+)", out))


def config_keys(flags):
    """JSON config keys: every flag that has an environment variable."""
    return {f[2:].replace("-", "_") for f, env in flags.items() if env}
