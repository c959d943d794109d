#!/usr/bin/env python3
"""Deployment files, checked without Docker or a cluster (issue 19):
deploy/docker-compose.yml, deploy/k8s/gpu (the GPU StatefulSet) and
deploy/k8s/cpu (its kustomize overlay, whose JSON patches are applied here;
and compared with `kubectl kustomize` where kubectl is installed),
Dockerfile and Dockerfile.gpu.

- every YAML file under deploy/ parses (python3-yaml), and passes yamllint
  where it is installed;
- the images: runtime stages COPY the binaries ENTRYPOINT and HEALTHCHECK
  name onto PATH and the config file the entrypoint reads; the GPU image is
  built with CUDA and sets NVIDIA_VISIBLE_DEVICES/NVIDIA_DRIVER_CAPABILITIES;
  EXPOSE matches the listen addresses;
- compose: the default sparsed service uses the GPU image with an nvidia
  device reservation, a CPU service under a profile; each keeps the data dir
  on a named volume, runs the durable flags, and has a stop grace period
  longer than shutdown_grace_seconds;
- Kubernetes: data dir on a volumeClaimTemplate, the ConfigMap mounted where
  the entrypoint reads the config, runtimeClassName nvidia and an
  nvidia.com/gpu limit (GPU only), probes on the gRPC port or binaries the
  image installs, non-root uid 10001 as in the Dockerfiles, a termination
  grace period longer than shutdown_grace_seconds, Services that select the
  pods and name their ports;
- every --flag, SPARSED_* variable and config key used is one the built
  daemon (or sparsectl) accepts (`--help`), the ConfigMap's JSON is strict
  JSON, and no key of it is overridden by the image's ENV, the entrypoint's
  flags or the pod's env/args (the file's value would never apply);
- each deployment's effective settings start the built daemon (on the CPU,
  on loopback, in a temporary data dir): first boot with `--restore auto`
  starts empty, SIGTERM writes the exit checkpoint, the second boot restores
  it."""

import argparse
import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_lib  # noqa: E402

try:
    import yaml
except ImportError:  # scripts/setup installs python3-yaml
    print("python3-yaml is not installed: deploy manifests not checked")
    sys.exit(0)

ROOT = deploy_lib.ROOT
DEPLOY = os.path.join(ROOT, "deploy")
COMPOSE = os.path.join(DEPLOY, "docker-compose.yml")
K8S_GPU = os.path.join(DEPLOY, "k8s", "gpu")
K8S_CPU = os.path.join(DEPLOY, "k8s", "cpu")
DOCKERFILES = ("Dockerfile", "Dockerfile.gpu")
UID = 10001
PATH_DIRS = ("/usr/local/bin", "/usr/bin", "/bin")
ARGS = None
_CACHE = {}


def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def dockerfile(name):
    if name not in _CACHE:
        _CACHE[name] = deploy_lib.Dockerfile(os.path.join(ROOT, name))
    return _CACHE[name]


def options():
    if "options" not in _CACHE:
        flags, envs = deploy_lib.daemon_options(ARGS.sparsed)
        _CACHE["options"] = (flags, envs, deploy_lib.config_keys(flags),
                             deploy_lib.client_env(ARGS.sparsectl))
    return _CACHE["options"]


def flag_values(argv):
    """{--flag: value} of an argv (`--flag value`, `--flag=value`, or a lone boolean)."""
    out, i = {}, 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            name, eq, value = a.partition("=")
            if not eq:
                if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                    value = argv[i + 1]
                    i += 1
                else:
                    value = "true"
            out[name] = value
        i += 1
    return out


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def read_json_config(path):
    """config/sparsed.json allows // comments (the daemon does)."""
    with open(path) as f:
        text = f.read()
    return json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))


# ---------------------------------------------------- kustomize, a subset --

def json_pointer(path):
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def json_patch(doc, ops):
    """RFC 6902 add/remove/replace/test (what deploy/k8s/cpu uses)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = json_pointer(op["path"])
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        kind = op["op"]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if kind == "test":
                assert parent[index] == op["value"], "test failed at %s" % op["path"]
            elif kind == "remove":
                del parent[index]
            elif kind == "replace":
                parent[index] = op["value"]
            elif kind == "add":
                parent.insert(index, op["value"])
            else:
                raise ValueError("unsupported op %s" % kind)
        else:
            if kind == "test":
                assert parent.get(last) == op["value"], "test failed at %s: %r" % (
                    op["path"], parent.get(last))
            elif kind == "remove":
                del parent[last]
            elif kind == "replace":
                assert last in parent, "replace of a missing %s" % op["path"]
                parent[last] = op["value"]
            elif kind == "add":
                parent[last] = op["value"]
            else:
                raise ValueError("unsupported op %s" % kind)
    return doc


def kustomize(directory):
    """The objects `kubectl kustomize directory` renders, for the fields
    deploy/k8s uses (resources, JSON6902 patches with a target)."""
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    unknown = set(k) - {"apiVersion", "kind", "resources", "patches"}
    assert not unknown, "%s: kustomize fields this test does not emulate: %s" % (
        directory, sorted(unknown))
    objects = []
    for r in k.get("resources", []):
        path = os.path.normpath(os.path.join(directory, r))
        objects += kustomize(path) if os.path.isdir(path) else load_yaml_docs(path)
    for patch in k.get("patches", []):
        target = patch["target"]
        ops = yaml.safe_load(patch["patch"])
        hits = [i for i, o in enumerate(objects)
                if o["kind"] == target.get("kind", o["kind"]) and
                o["metadata"]["name"] == target.get("name", o["metadata"]["name"])]
        assert hits, "%s: a patch matches nothing: %s" % (directory, target)
        for i in hits:
            objects[i] = json_patch(objects[i], ops)
    return objects


def canonical(objects):
    return sorted(json.dumps(o, sort_keys=True) for o in objects)


# -------------------------------------------------------------- the daemon --

def run_daemon(test, config_json, env, argv_tail, data_dir, expect):
    """Starts the built daemon with a deployment's settings moved onto
    loopback, the CPU and `data_dir`; waits until it serves, checks that its
    log contains `expect`, stops it with SIGTERM; returns the log."""
    with tempfile.TemporaryDirectory() as tmp:
        config_path = os.path.join(tmp, "sparsed.json")
        with open(config_path, "w") as f:
            json.dump(config_json, f)
        announce = os.path.join(tmp, "announce.json")
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("SPARSED_")}
        child_env.update(env)
        argv = [ARGS.sparsed, "--config", config_path, "--data-dir", data_dir] + argv_tail + [
            "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--device", "cpu",
            "--announce-file", announce]
        log_path = os.path.join(tmp, "log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen(argv, env=child_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 30
            while not os.path.exists(announce) and proc.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            with open(log_path) as f:
                started = f.read()
            test.assertTrue(os.path.exists(announce),
                            "the daemon did not start with %s:\n%s" % (argv[1:], started))
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        with open(log_path) as f:
            text = f.read()
        test.assertEqual(code, 0, text)
        for e in expect:
            test.assertIn(e, text)
        return text


class DeploymentChecks(unittest.TestCase):
    """Shared checks of one image and one deployment of it."""

    def check_env_names(self, env, where):
        _, envs, _, client = options()
        for name in env:
            if name.startswith("SPARSED_"):
                self.assertIn(name, envs | client, "%s: %s is a variable neither sparsed nor "
                              "sparsectl reads" % (where, name))

    def check_flags(self, argv, where):
        flags = options()[0]
        for a in argv:
            if a.startswith("--"):
                self.assertIn(a.split("=")[0], flags, "%s: sparsed has no flag %s" % (where, a))

    def check_durable(self, argv, where, checkpoint_name="auto"):
        v = flag_values(argv)
        self.assertEqual(v.get("--restore"), checkpoint_name,
                         "%s: --restore %s (the daemon's own checkpoint)" % (where, checkpoint_name))
        self.assertGreater(float(v.get("--checkpoint-every", "0")), 0, where)
        self.assertIn(v.get("--checkpoint-on-exit"), ("true", "1", "yes", "on"), where)

    def image_of(self, image):
        images = image_map()
        self.assertIn(image, images, "image %s is built by no Dockerfile (compose's build "
                      "sections name %s)" % (image, images))
        return images[image]

    def entrypoint(self, name):
        df = dockerfile(name)
        ep = df.exec_form(df.final, "ENTRYPOINT")
        v = flag_values(ep[1:])
        return ep, v["--config"], v["--data-dir"]

    def start_twice(self, config_json, env, argv_tail, where):
        """First boot on an empty data dir starts empty; the second restores."""
        data = tempfile.mkdtemp(prefix="sparsed-deploy-")
        try:
            run_daemon(self, config_json, env, argv_tail, data,
                       ["first start on this data dir, starting empty", "exit checkpoint"])
            run_daemon(self, config_json, env, argv_tail, data, ["restored checkpoint"])
        finally:
            shutil.rmtree(data, ignore_errors=True)
        print("%s: the daemon started empty, saved on SIGTERM and restored" % where)


def image_map():
    """{image tag: Dockerfile} from compose's build sections."""
    if "images" not in _CACHE:
        compose = load_yaml_docs(COMPOSE)[0]
        _CACHE["images"] = {s["image"]: s["build"]["dockerfile"]
                            for s in compose["services"].values() if "build" in s}
    return _CACHE["images"]


class YamlTest(unittest.TestCase):
    def test_every_yaml_parses(self):
        count = 0
        for base, _, files in os.walk(DEPLOY):
            for f in files:
                if f.endswith((".yml", ".yaml")):
                    docs = load_yaml_docs(os.path.join(base, f))
                    self.assertTrue(docs, f)
                    count += 1
        self.assertGreaterEqual(count, 6)

    def test_yamllint(self):
        tool = shutil.which("yamllint")
        if not tool:
            self.skipTest("yamllint is not installed")
        conf = "{extends: relaxed, rules: {line-length: {max: 120}}}"
        r = subprocess.run([tool, "-f", "parsable", "-d", conf, DEPLOY],
                           capture_output=True, text=True)
        errors = [l for l in r.stdout.splitlines() if "[error]" in l]
        self.assertEqual(errors, [], r.stdout)


class DockerfileTest(DeploymentChecks):
    def test_runtime_stage_installs_what_it_runs(self):
        for name in DOCKERFILES:
            df = dockerfile(name)
            runtime = df.final
            self.assertEqual(runtime.name, "runtime", name)
            files = df.installed_files(runtime)
            ep = df.exec_form(runtime, "ENTRYPOINT")
            health = df.healthcheck(runtime)
            self.assertIsNotNone(health, "%s has no HEALTHCHECK" % name)
            for binary in (ep[0], health[0]):
                on_path = [os.path.join(d, binary) for d in PATH_DIRS
                           if os.path.join(d, binary) in files]
                self.assertTrue(on_path, "%s: the runtime stage does not COPY %s onto PATH"
                                % (name, binary))
                source_stage, source = files[on_path[0]]
                self.assertEqual(source_stage, "builder", name)
                # What the builder builds: build/server/sparsed, build/client/sparsectl.
                self.assertRegex(source, r"^/src/build/(server|client)/%s$" % re.escape(binary))
            builds = " ".join(df.instructions(df.stage("builder"), "RUN"))
            self.assertRegex(builds, r"scripts/build|ninja -C build sparsed sparsectl", name)
            self.assertIn("strip build/server/sparsed build/client/sparsectl", builds, name)
            # The config the entrypoint reads is in the image, from the repository.
            _, config, data_dir = self.entrypoint(name)
            self.assertIn(config, files, name)
            self.assertTrue(os.path.exists(os.path.join(ROOT, files[config][1])), name)
            self.check_flags(ep[1:], name + " ENTRYPOINT")
            self.check_env_names(df.env(runtime), name + " ENV")
            # Non-root: uid 10001, owner of the data dir.
            runs = " ".join(df.instructions(runtime, "RUN"))
            self.assertIn("--uid %d" % UID, runs, name)
            self.assertIn("--gid %d" % UID, runs, name)
            self.assertIn("install -d -o sparsed -g sparsed -m 0750 %s" % data_dir, runs, name)
            self.assertEqual(df.instructions(runtime, "USER")[-1], "sparsed:sparsed", name)
            self.assertIn('["%s"]' % data_dir, df.instructions(runtime, "VOLUME")[-1], name)
            # EXPOSE matches the addresses the image listens on.
            env = df.env(runtime)
            exposed = {int(p) for t in df.instructions(runtime, "EXPOSE") for p in t.split()}
            self.assertEqual(exposed, {port_of(env["SPARSED_LISTEN"]),
                                       port_of(env["SPARSED_METRICS_LISTEN"])}, name)
            self.assertEqual(port_of(env["SPARSED_ADDR"]), port_of(env["SPARSED_LISTEN"]), name)

    def test_cpu_and_gpu_builds(self):
        cpu = " ".join(dockerfile("Dockerfile").instructions(
            dockerfile("Dockerfile").stage("builder"), "RUN"))
        self.assertIn("-DSPARSED_WITH_CUDA=OFF", cpu)
        gpu_df = dockerfile("Dockerfile.gpu")
        gpu = " ".join(gpu_df.instructions(gpu_df.stage("builder"), "RUN"))
        self.assertIn("-DSPARSED_WITH_CUDA=ON", gpu)
        self.assertIn("nvcc", gpu)
        self.assertIn("readelf -d build/server/sparsed | grep -q 'libcusparse'", gpu)
        # sm_90 only (CMakeLists.txt); the image says which driver it needs.
        with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
            self.assertIn("CMAKE_CUDA_ARCHITECTURES 90", f.read())
        env = gpu_df.env(gpu_df.final)
        self.assertEqual(env.get("NVIDIA_VISIBLE_DEVICES"), "all")
        caps = env.get("NVIDIA_DRIVER_CAPABILITIES", "").split(",")
        self.assertIn("compute", caps)
        self.assertIn("utility", caps)
        self.assertEqual(env.get("NVIDIA_REQUIRE_CUDA"),
                         "cuda>=%s" % gpu_df.global_args["CUDA_VERSION"])
        # Both stages on the Debian 12 of the CPU image (one C++ ABI).
        for name in DOCKERFILES:
            df = dockerfile(name)
            self.assertEqual(df.global_args.get("DEBIAN_IMAGE"), "debian:12", name)
            for s in df.stages:
                self.assertTrue(s.base == "debian:12" or
                                s.base in {t.name for t in df.stages}, (name, s.base))


class ComposeTest(DeploymentChecks):
    def setUp(self):
        self.compose = load_yaml_docs(COMPOSE)[0]
        self.services = self.compose["services"]

    def sparsed_services(self):
        return {n: s for n, s in self.services.items()
                if s.get("build", {}).get("dockerfile") in DOCKERFILES}

    def test_gpu_service_is_the_default(self):
        gpu = {n: s for n, s in self.sparsed_services().items()
               if s["build"]["dockerfile"] == "Dockerfile.gpu"}
        self.assertEqual(len(gpu), 1)
        name, s = next(iter(gpu.items()))
        self.assertNotIn("profiles", s, "`docker compose up` must start the GPU service")
        devices = s["deploy"]["resources"]["reservations"]["devices"]
        self.assertTrue(any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", [])
                            and (d.get("count") == "all" or int(d.get("count", 0)) >= 1)
                            for d in devices), devices)
        self.assertRegex(s["environment"].get("SPARSED_DEVICE", "auto"), r"^(auto|cuda:\d+)$")
        self.assertEqual(s["build"]["context"], "..")

    def test_cpu_service_under_a_profile(self):
        cpu = {n: s for n, s in self.sparsed_services().items()
               if s["build"]["dockerfile"] == "Dockerfile"}
        self.assertEqual(len(cpu), 1)
        name, s = next(iter(cpu.items()))
        self.assertTrue(s.get("profiles"), "the CPU service must not start with the GPU one")
        self.assertNotIn("deploy", s)
        self.assertEqual(s["environment"].get("SPARSED_DEVICE"), "cpu")
        # Prometheus scrapes `sparsed` whichever service runs.
        self.assertIn("sparsed", s["networks"]["default"]["aliases"])
        for other in self.services.values():
            if "profiles" not in other:
                self.assertNotIn(name, other.get("depends_on", []))
        for n, other in self.services.items():
            for dep in other.get("depends_on", []):
                if "profiles" in self.services[dep]:
                    self.assertIn("profiles", other, "%s depends on profiled %s" % (n, dep))

    def test_sparsed_services(self):
        declared_volumes = set(self.compose.get("volumes", {}))
        shutdown_grace = read_json_config(os.path.join(ROOT, "config", "sparsed.json"))[
            "shutdown_grace_seconds"]
        for name, s in self.sparsed_services().items():
            where = "compose service %s" % name
            df_name = s["build"]["dockerfile"]
            self.assertEqual(self.image_of(s["image"]), df_name, where)
            df = dockerfile(df_name)
            env = df.env(df.final)
            _, config, data_dir = self.entrypoint(df_name)
            command = s.get("command", [])
            self.assertIsInstance(command, list, where + ": command in exec form")
            self.check_flags(command, where)
            self.check_durable(command, where)
            self.check_env_names(s.get("environment", {}), where)
            # The data dir on a named (durable) volume.
            mounts = {v.split(":")[1]: v.split(":")[0] for v in s.get("volumes", [])}
            self.assertIn(data_dir, mounts, where)
            self.assertIn(mounts[data_dir], declared_volumes, where)
            # Ports: published to the container's listen ports.
            targets = {int(p.split(":")[-1]) for p in s["ports"]}
            self.assertEqual(targets, {port_of(env["SPARSED_LISTEN"]),
                                       port_of(env["SPARSED_METRICS_LISTEN"])}, where)
            grace = float(s["stop_grace_period"].rstrip("s"))
            self.assertGreater(grace, shutdown_grace + 2, where)
            self.assertEqual(s.get("restart"), "unless-stopped", where)

    def test_prometheus_scrapes_the_metrics_port(self):
        prom = load_yaml_docs(os.path.join(DEPLOY, "prometheus.yml"))[0]
        targets = [t for job in prom["scrape_configs"] if job["job_name"] == "sparsed"
                   for c in job["static_configs"] for t in c["targets"]]
        self.assertEqual(targets, ["sparsed:9464"])
        self.assertIn("sparsed", self.services)

    def test_each_service_starts_the_daemon(self):
        config = read_json_config(os.path.join(ROOT, "config", "sparsed.json"))
        for name, s in sorted(self.sparsed_services().items()):
            df = dockerfile(s["build"]["dockerfile"])
            env = dict(df.env(df.final))
            env.update({k: str(v) for k, v in s.get("environment", {}).items()})
            self.start_twice(config, env, list(s.get("command", [])), "compose " + name)


class KubernetesTest(DeploymentChecks):
    def variants(self):
        gpu = []
        for f in sorted(os.listdir(K8S_GPU)):
            if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml":
                gpu += load_yaml_docs(os.path.join(K8S_GPU, f))
        return {"gpu": gpu, "cpu": kustomize(K8S_CPU)}

    def test_kustomizations_match_the_files(self):
        self.assertEqual(canonical(kustomize(K8S_GPU)), canonical(self.variants()["gpu"]))
        kubectl = shutil.which("kubectl")
        if not kubectl:
            self.skipTest("kubectl is not installed: the overlay was applied by this test only")
        for d in (K8S_GPU, K8S_CPU):
            r = subprocess.run([kubectl, "kustomize", d], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            rendered = [o for o in yaml.safe_load_all(r.stdout) if o]
            self.assertEqual(canonical(rendered), canonical(kustomize(d)), d)

    def test_variants(self):
        flags, _, keys, _ = options()
        for variant, objects in self.variants().items():
            with self.subTest(variant=variant):
                self.check_variant(variant, objects, keys)

    def check_variant(self, variant, objects, keys):
        by_kind = {}
        for o in objects:
            by_kind.setdefault(o["kind"], []).append(o)
        sts = by_kind["StatefulSet"]
        self.assertEqual(len(sts), 1)
        sts = sts[0]
        where = "k8s %s StatefulSet" % variant
        spec = sts["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"]["labels"]
        self.assertEqual(spec["selector"]["matchLabels"], labels)
        self.assertEqual(spec["replicas"], 1, where)
        container = pod["containers"][0]
        df_name = self.image_of(container["image"])
        self.assertEqual(df_name, "Dockerfile.gpu" if variant == "gpu" else "Dockerfile", where)
        df = dockerfile(df_name)
        image_env = df.env(df.final)
        ep, config_path, data_dir = self.entrypoint(df_name)

        # GPU parts, only in the GPU variant.
        gpu_limit = container["resources"].get("limits", {}).get("nvidia.com/gpu")
        if variant == "gpu":
            self.assertEqual(pod.get("runtimeClassName"), "nvidia", where)
            self.assertGreaterEqual(int(gpu_limit or 0), 1, where)
        else:
            self.assertNotIn("runtimeClassName", pod, where)
            self.assertIsNone(gpu_limit, where)
            self.assertNotIn("nvidia.com/gpu", container["resources"].get("requests", {}))

        # Non-root as in the Dockerfiles.
        sc = pod["securityContext"]
        self.assertTrue(sc["runAsNonRoot"], where)
        self.assertEqual((sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]), (UID, UID, UID))
        self.assertFalse(container["securityContext"]["allowPrivilegeEscalation"])

        # Data dir on a PersistentVolumeClaim template; nothing else there.
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        self.assertIn(data_dir, mounts, where)
        claims = {c["metadata"]["name"]: c for c in spec.get("volumeClaimTemplates", [])}
        data_volume = mounts[data_dir]["name"]
        self.assertIn(data_volume, claims, "%s: %s is not on a PVC" % (where, data_dir))
        self.assertNotIn(data_volume, {v["name"] for v in pod.get("volumes", [])}, where)
        self.assertIn("ReadWriteOnce", claims[data_volume]["spec"]["accessModes"])
        self.assertTrue(claims[data_volume]["spec"]["resources"]["requests"]["storage"])

        # The ConfigMap where the entrypoint reads its config.
        config_dir, config_file = os.path.split(config_path)
        self.assertIn(config_dir, mounts, where)
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        cm_name = volumes[mounts[config_dir]["name"]]["configMap"]["name"]
        cms = {c["metadata"]["name"]: c for c in by_kind["ConfigMap"]}
        self.assertIn(cm_name, cms, where)
        self.assertIn(config_file, cms[cm_name]["data"], where)
        config = json.loads(cms[cm_name]["data"][config_file])  # strict JSON
        self.assertIsInstance(config, dict)
        unknown = set(config) - keys
        self.assertEqual(unknown, set(), "%s: config keys sparsed does not know" % where)

        # Flags, env and what would shadow the file.
        args = container.get("args", [])
        self.assertNotIn("command", container, where + ": keep the image's entrypoint")
        self.check_flags(args, where)
        self.check_durable(args, where, config.get("checkpoint_name", "auto"))
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        self.check_env_names(env, where)
        if variant == "gpu":
            self.assertRegex(env.get("SPARSED_DEVICE", "auto"), r"^(auto|cuda:\d+)$", where)
        else:
            self.assertEqual(env.get("SPARSED_DEVICE"), "cpu", where)
        flags = options()[0]
        overriding = set(image_env) | set(env)
        overriding |= {flags[f] for f in flag_values(ep[1:] + args) if flags.get(f)}
        for key in config:
            self.assertNotIn("SPARSED_" + key.upper(), overriding,
                             "%s: config key %s is overridden by the image's ENV, the "
                             "entrypoint or the pod's env/args" % (where, key))

        # Probes: the gRPC health port, or binaries the image installs.
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        self.assertEqual(ports["grpc"], port_of(image_env["SPARSED_LISTEN"]), where)
        self.assertEqual(ports["metrics"], port_of(image_env["SPARSED_METRICS_LISTEN"]), where)
        installed = df.installed_files(df.final)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            self.assertIn(probe, container, where)
            p = container[probe]
            if "grpc" in p:
                self.assertEqual(p["grpc"]["port"], ports["grpc"], (where, probe))
            elif "exec" in p:
                binary = p["exec"]["command"][0]
                paths = [binary] if binary.startswith("/") else [
                    os.path.join(d, binary) for d in PATH_DIRS]
                self.assertTrue(any(x in installed for x in paths),
                                "%s %s runs %s, which the image does not install"
                                % (where, probe, binary))
            elif "httpGet" in p:
                self.assertIn(p["httpGet"]["port"], (ports["metrics"], "metrics"))
                self.assertIn(p["httpGet"]["path"], ("/healthz", "/metrics"))
            else:
                self.fail("%s %s: no grpc, exec or httpGet" % (where, probe))

        # Time for shutdown_grace_seconds, cancellation and the exit checkpoint.
        defaults = read_json_config(os.path.join(ROOT, "config", "sparsed.json"))
        grace = config.get("shutdown_grace_seconds", defaults["shutdown_grace_seconds"])
        self.assertGreater(pod["terminationGracePeriodSeconds"], grace + 2, where)

        # Services select the pods; the governing one is headless.
        services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
        self.assertEqual(services[spec["serviceName"]]["spec"].get("clusterIP"), "None")
        for s in services.values():
            self.assertEqual(s["spec"]["selector"], labels, s["metadata"]["name"])
            for p in s["spec"]["ports"]:
                self.assertIn(p["targetPort"], list(ports) + list(ports.values()))

        self._run_config = (config, dict(image_env, **env), args)

    def test_each_variant_starts_the_daemon(self):
        keys = options()[2]
        for variant, objects in sorted(self.variants().items()):
            self.check_variant(variant, objects, keys)
            config, env, args = self._run_config
            self.start_twice(config, env, list(args), "k8s " + variant)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    p.add_argument("--sparsectl", required=True)
    ARGS, rest = p.parse_known_args()
    for b in (ARGS.sparsed, ARGS.sparsectl):
        if not os.path.exists(b):
            print("%s is not built: deploy manifests not checked" % b)
            sys.exit(0)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
