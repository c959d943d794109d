#!/usr/bin/env python3
"""A bounded chaos run against a real sparsed (issue 17, "Proof"), by hand:

    /usr/bin/python3 tests/chaos/chaos_run.py --sparsed build/server/sparsed \
        --sparsectl build/client/sparsectl --seconds 180 --seed 1

Loopback only; stops by itself. It starts the daemon with authentication (3
user tenants and an admin), periodic (1 s) and exit checkpoints, a memory
limit and the hostile-client bounds, then for --seconds runs concurrently:

- a writer per tenant: uploads (dense, CSR, COO; named and unnamed; some
  through `sparsectl put`) and deletes, remembering every acknowledged one
  (a label `chaos_key` identifies unnamed tensors across restarts, where ids
  change) with a checksum of its values;
- a reader per tenant: download, SpMM, convert, transpose, inspect (and
  `sparsectl get`) of its own tensors, checked against numpy/scipy, plus
  reads of other tenants' tensors (must be NOT_FOUND);
- a hostile client: bogus method names, garbage bytes to real methods,
  invalid tensors, cost bombs, calls without or with a wrong token,
  cross-tenant reads/deletes/operands, user calls to admin APIs;
- a staller: several uploads at once that send a header and then nothing;
- a sampler: the daemon's VmRSS, Threads and /metrics size every second;
- every 20-30 s: SIGKILL, restart with --restore auto, and a check that every
  write and delete acknowledged before the start of the last periodic
  checkpoint that completed before the kill survived (identical values,
  deletes stay deleted); at the end SIGTERM, restart, and every acknowledged
  write must be there.

Exit 0 only if nothing acknowledged was lost or changed, no cross-tenant
access succeeded, no result was wrong, the daemon never crashed, and its
RSS and thread count stayed under the asserted bounds.
"""

import argparse
import collections
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import zlib

import grpc
import numpy as np
import scipy.sparse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))
import sparsed_client as sc  # noqa: E402

USERS = ["alice", "bob", "carol"]
ADMIN = "ops"
MEMORY_LIMIT = 2_000_000_000
MAX_THREADS = 700
MAX_RSS = MEMORY_LIMIT + (1 << 30)
LIVE_CAP = 40          # deletable tensors a writer keeps per tenant (deletes beyond)
KEEPERS = 150          # tensors per tenant that are never deleted (a long-lived population)
CALL_TIMEOUT = 30
SC = grpc.StatusCode


def checksum(m):
    """Shape and values (densified, float32) of a matrix, as a hex digest."""
    a = m.toarray() if scipy.sparse.issparse(m) else np.asarray(m)
    a = np.ascontiguousarray(a, dtype="<f4")
    return hashlib.sha256(repr(a.shape).encode() + a.tobytes()).hexdigest()[:24]


def dense_of(m):
    return m.toarray() if scipy.sparse.issparse(m) else np.asarray(m)


class Record:
    __slots__ = ("key", "name", "id", "kind", "sum", "mat", "shape", "nnz", "t_ack", "keep")

    def __init__(self, key, name, kind, mat):
        self.key, self.name, self.kind, self.mat = key, name, kind, mat
        self.shape = mat.shape
        self.nnz = mat.nnz if scipy.sparse.issparse(mat) else mat.size
        self.sum = checksum(mat)
        self.id = None
        self.t_ack = None
        self.keep = False


class TenantModel:
    """What one tenant's writer knows the daemon acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.live = {}          # key -> Record (upload acknowledged, not deleted)
        self.deleted = {}       # key -> (Record, t_ack of the delete)
        self.pending = {}       # key -> Record (upload sent, outcome unknown)
        self.pending_del = set()  # keys whose delete was sent, outcome unknown


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = collections.Counter()
        self.faults = collections.Counter()
        self.c = collections.Counter()     # everything else
        self.problems = []                 # (kind, text): failures of the run
        self.notes = []                    # unexpected but tolerated

    def call(self, kind, n=1):
        with self.lock:
            self.calls[kind] += n

    def fault(self, kind, n=1):
        with self.lock:
            self.faults[kind] += n

    def inc(self, kind, n=1):
        with self.lock:
            self.c[kind] += n

    def problem(self, kind, text):
        with self.lock:
            self.c["problem:" + kind] += 1
            if len(self.problems) < 200:
                self.problems.append((kind, text))
        print("PROBLEM %s: %s" % (kind, text), flush=True)

    def note(self, text):
        with self.lock:
            if len(self.notes) < 50:
                self.notes.append(text)


class Harness:
    def __init__(self, args):
        self.args = args
        self.stats = Stats()
        self.root = tempfile.mkdtemp(prefix="sparsed-chaos-")
        self.data = os.path.join(self.root, "data")
        self.tokens = {t: "chaos-%s-%s" % (t, secrets.token_hex(12)) for t in USERS + [ADMIN]}
        self.token_file = os.path.join(self.root, "tokens")
        with open(self.token_file, "w") as f:
            f.write("# chaos run tokens: SHA256 TENANT ROLE\n")
            for t, tok in self.tokens.items():
                f.write("%s %s %s\n" % (hashlib.sha256(tok.encode()).hexdigest(), t,
                                        "admin" if t == ADMIN else "user"))
        self.models = {t: TenantModel() for t in USERS + [ADMIN]}
        self.cv = threading.Condition()
        self.up = False
        self.stop = False
        self.gen = 0
        self.address = self.metrics = None
        self.proc = None
        self.starts = 0
        self.parked = 0
        self.nworkers = 0
        self.samples = []           # (t, rss, threads, metrics bytes)
        self.max = collections.Counter()
        self.seq = collections.Counter()
        self.seq_lock = threading.Lock()
        self.restart_seconds = []

    # ----- the daemon -------------------------------------------------
    def start(self, restore):
        self.starts += 1
        announce = os.path.join(self.root, "announce-%d.json" % self.starts)
        log_path = os.path.join(self.root, "sparsed-%d.log" % self.starts)
        cmd = [self.args.sparsed, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
               "--device", self.args.device, "--data-dir", self.data,
               "--announce-file", announce, "--log-level", "info",
               "--auth-tokens", self.token_file,
               "--checkpoint-every", "1", "--checkpoint-on-exit",
               "--memory-limit-bytes", str(MEMORY_LIMIT), "--max-inflight-compute", "16",
               "--upload-idle-timeout-seconds", "3",
               "--tenant-max-requests-per-second", "2000"]
        if restore:
            cmd += ["--restore", "auto"]
        t0 = time.monotonic()
        self.log = open(log_path, "w")
        proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError("sparsed exited at start (%d):\n%s" % (
                    proc.returncode, open(log_path).read()[-4000:]))
            try:
                with open(announce) as f:
                    a = json.load(f)
                break
            except (OSError, ValueError):
                if time.time() > deadline:
                    proc.kill()
                    raise RuntimeError("sparsed did not start within 60 s")
                time.sleep(0.02)
        self.restart_seconds.append(time.monotonic() - t0)
        self.proc, self.address, self.metrics = proc, a["grpc"], a["metrics"]
        self.log_path = log_path

    def scrape(self, timeout=5):
        with urllib.request.urlopen("http://%s/metrics" % self.metrics, timeout=timeout) as r:
            return r.read().decode()

    def last_checkpoint(self):
        for line in self.scrape().splitlines():
            if line.startswith("sparsed_checkpoint_last_success_timestamp_seconds"):
                return float(line.split()[-1])
        raise RuntimeError("no sparsed_checkpoint_last_success_timestamp_seconds in /metrics")

    # ----- worker coordination ----------------------------------------
    def wait_up(self):
        """At the top of every worker iteration: parks while the daemon is down;
        returns (gen, address), or None once the run stops."""
        with self.cv:
            if not self.up and not self.stop:
                self.parked += 1
                self.cv.notify_all()
                while not self.up and not self.stop:
                    self.cv.wait()
                self.parked -= 1
            return None if self.stop else (self.gen, self.address)

    def disrupted(self, gen):
        with self.cv:
            return not self.up or self.gen != gen

    def sleep(self, s):
        end = time.monotonic() + s
        while time.monotonic() < end:
            with self.cv:
                if self.stop or not self.up:
                    return
            time.sleep(max(0.0, min(0.1, end - time.monotonic())))

    def next_seq(self, tenant):
        with self.seq_lock:
            self.seq[tenant] += 1
            return self.seq[tenant]

    def client(self, cache, tenant, gen, address):
        """A Client of this thread for (tenant, gen); older ones are closed."""
        key = (tenant, gen)
        if key not in cache:
            for k in [k for k in cache if k[1] != gen]:
                cache.pop(k).close()
            tok = self.tokens[tenant] if tenant in self.tokens else tenant
            cache[key] = sc.Client(address, token=tok)
        return cache[key]

    def worker(self, name, body):
        """Runs body(gen, address, clients) until the run stops."""
        clients = {}
        rnd = random.Random("%s-%s" % (self.args.seed, name))
        rng = np.random.default_rng(zlib.crc32(("%s-%s" % (self.args.seed, name)).encode()))
        while True:
            got = self.wait_up()
            if got is None:
                break
            gen, address = got
            try:
                body(gen, address, clients, rnd, rng)
            except grpc.RpcError as e:
                if self.disrupted(gen):
                    self.stats.inc("calls cut by a kill")
                elif e.code() == SC.RESOURCE_EXHAUSTED:
                    self.stats.inc("refused RESOURCE_EXHAUSTED")
                else:
                    self.stats.problem("unexpected error", "%s: %s %s" % (
                        name, e.code(), e.details()))
            except Exception as e:  # noqa: BLE001
                if self.disrupted(gen):
                    self.stats.inc("calls cut by a kill")
                else:
                    self.stats.problem("worker exception", "%s: %s\n%s" % (
                        name, e, traceback.format_exc()))
        for c in clients.values():
            c.close()

    def ctl(self, tenant, address, *argv, token=True, timeout=CALL_TIMEOUT):
        env = dict(os.environ)
        env.pop("SPARSED_TOKEN", None)
        if token:
            env["SPARSED_TOKEN"] = self.tokens[tenant]
        return subprocess.run([self.args.sparsectl, "--server", address, "--timeout",
                               str(timeout), *argv], capture_output=True, text=True, env=env,
                              timeout=timeout + 30)

    # ----- tensors ----------------------------------------------------
    @staticmethod
    def random_matrix(rng, kind):
        r, c = int(rng.integers(1, 48)), int(rng.integers(1, 48))
        if kind == "dense":
            return rng.standard_normal((r, c)).astype(np.float32)
        density = float(rng.uniform(0.02, 0.5))
        m = scipy.sparse.random(r, c, density=density, format="csr", dtype=np.float32,
                                random_state=np.random.RandomState(int(rng.integers(2**31))))
        m.data = rng.standard_normal(m.nnz).astype(np.float32)
        m.sort_indices()
        return m.tocoo() if kind == "coo" else m

    # ----- writers ----------------------------------------------------
    def writer_step(self, tenant, gen, address, clients, rnd, rng):
        model = self.models[tenant]
        c = self.client(clients, tenant, gen, address)
        with model.lock:
            n_keep = sum(1 for r in model.live.values() if r.keep)
            deletable = [k for k, r in model.live.items()
                         if not r.keep and k not in model.pending_del]
        if deletable and (len(deletable) >= LIVE_CAP or rnd.random() < 0.3):
            key = rnd.choice(deletable)
            with model.lock:
                rec = model.live[key]
                model.pending_del.add(key)
            handle = rec.name if (rec.name and rnd.random() < 0.5) else rec.id
            try:
                self.stats.call("delete")
                c.tensors.Delete(sc.ref(handle), timeout=CALL_TIMEOUT)
            except grpc.RpcError as e:
                if self.disrupted(gen):
                    raise  # outcome unknown: stays in pending_del
                with model.lock:
                    model.pending_del.discard(key)
                if e.code() == SC.NOT_FOUND:
                    self.stats.problem("lost", "%s: delete of acknowledged %s (%s, acked "
                                       "%.3f) got NOT_FOUND: %s" % (tenant, key, handle,
                                                                    rec.t_ack, e.details()))
                    with model.lock:
                        model.live.pop(key, None)
                    return
                raise
            t = time.time()
            with model.lock:
                model.pending_del.discard(key)
                model.live.pop(key, None)
                model.deleted[key] = (rec, t)
                rec.mat = None  # only the checksum is needed from here on
            self.stats.inc("acknowledged deletes")
            return
        # An upload.
        kind = rnd.choice(["dense", "csr", "coo"])
        mat = self.random_matrix(rng, kind)
        seq = self.next_seq(tenant)
        key = "%s:%d" % (tenant, seq)
        named = rnd.random() < 0.5
        name = "%s-w%d" % (tenant, seq) if named else ""
        rec = Record(key, name, kind, mat)
        rec.keep = n_keep < KEEPERS and rnd.random() < 0.1
        via_ctl = kind == "dense" and rnd.random() < 0.15
        if named and not via_ctl and rnd.random() < 0.05:
            # A name this tenant already holds: ALREADY_EXISTS, nothing written.
            with model.lock:
                taken = [r.name for r in model.live.values() if r.name]
            if taken:
                self.stats.inc("bad inputs: duplicate name")
                try:
                    self.stats.call("upload")
                    c.upload(mat, name=rnd.choice(taken), labels={"chaos_key": key + "dup"})
                    self.stats.problem("bad input accepted", "duplicate name upload was OK")
                except grpc.RpcError as e:
                    if not self.disrupted(gen) and e.code() != SC.ALREADY_EXISTS:
                        self.stats.problem("unexpected error", "duplicate name: %s %s" % (
                            e.code(), e.details()))
                return
        with model.lock:
            model.pending[key] = rec
        if via_ctl:
            path = os.path.join(self.root, "ctl-%s-%d.npy" % (tenant, seq))
            np.save(path, mat)
            self.stats.call("sparsectl put")
            argv = ["put", path, "--label", "chaos_key=" + key, "-q"]
            if named:
                argv += ["--name", name]
            p = self.ctl(tenant, address, *argv)
            os.unlink(path)
            if p.returncode != 0:
                if self.disrupted(gen):
                    self.stats.inc("calls cut by a kill")
                    return  # outcome unknown: stays pending
                with model.lock:
                    model.pending.pop(key, None)
                self.stats.problem("unexpected error", "sparsectl put: %s" % p.stderr.strip())
                return
            rec.id = p.stdout.strip()
        else:
            self.stats.call("upload")
            try:
                info = c.tensors.Upload(self._upload_messages(mat, name, key),
                                        timeout=CALL_TIMEOUT)
            except grpc.RpcError:
                if not self.disrupted(gen):
                    with model.lock:
                        model.pending.pop(key, None)
                raise
            rec.id = info.id
        rec.t_ack = time.time()
        with model.lock:
            model.pending.pop(key, None)
            model.live[key] = rec
        self.stats.inc("acknowledged writes")

    @staticmethod
    def _upload_messages(mat, name, key):
        desc, parts = sc.to_components(mat)
        yield sc.tensors_pb.UploadRequest(header=sc.tensors_pb.UploadHeader(
            desc=desc, name=name, labels={"chaos_key": key}))
        for comp, arr in parts:
            data = arr.tobytes()
            if data:
                yield sc.tensors_pb.UploadRequest(chunk=sc.pb.Chunk(component=comp, offset=0,
                                                                    data=data))

    # ----- readers ----------------------------------------------------
    def reader_step(self, tenant, gen, address, clients, rnd, rng):
        c = self.client(clients, tenant, gen, address)
        if rnd.random() < 0.08:
            return self.cross_tenant_read(tenant, c, gen, rnd, rng, "reader")
        model = self.models[tenant]
        with model.lock:
            keys = [k for k in model.live if k not in model.pending_del]
            if not keys:
                rec = mat = None
            else:
                rec = model.live[rnd.choice(keys)]
                mat = rec.mat
        if mat is None:
            self.stats.call("list")
            c.tensors.List(sc.tensors_pb.ListRequest(), timeout=CALL_TIMEOUT)
            time.sleep(0.05)
            return
        handle = rec.name if (rec.name and rnd.random() < 0.5) else rec.id
        want = dense_of(mat).astype(np.float64)
        sparse = rec.kind != "dense"
        op = rnd.choice(["download", "spmm", "spmm", "convert", "transpose", "inspect", "ctlget"]
                        if sparse else ["download", "spmm", "convert", "inspect", "ctlget"])
        try:
            if op == "download":
                self.stats.call("download")
                got = c.download(handle)
                self.check(tenant, rec, op, checksum(got) == rec.sum, "checksum differs")
            elif op == "ctlget":
                if not rec.name:
                    return
                path = os.path.join(self.root, "get-%s-%d.npy" % (tenant, rnd.randrange(1 << 30)))
                self.stats.call("sparsectl get")
                p = self.ctl(tenant, address, "get", rec.name, "-o", path)
                if p.returncode != 0:
                    if self.disrupted(gen) or self.gone(tenant, rec):
                        return
                    self.stats.problem("unexpected error", "sparsectl get %s: %s" % (
                        rec.name, p.stderr.strip()))
                    return
                got = np.load(path)
                os.unlink(path)
                self.check(tenant, rec, op, got.shape == want.shape and np.array_equal(
                    got.astype(np.float32), want.astype(np.float32)), "values differ")
            elif op == "spmm":
                self.stats.call("spmm")
                if sparse:
                    ta = rnd.random() < 0.3
                    k = want.shape[0] if ta else want.shape[1]
                    x = rng.standard_normal((k, int(rng.integers(1, 9)))).astype(np.float32)
                    got = c.spmm(handle, x, transpose_a=ta, inline=True)
                    ref = (want.T if ta else want) @ x.astype(np.float64)
                else:
                    a = scipy.sparse.random(int(rng.integers(1, 20)), want.shape[0], density=0.3,
                                            format="csr", dtype=np.float32,
                                            random_state=np.random.RandomState(
                                                int(rng.integers(2**31))))
                    got = c.spmm(a, handle, inline=True)
                    ref = a.toarray().astype(np.float64) @ want
                self.check(tenant, rec, op, got.shape == ref.shape and np.allclose(
                    got, ref, rtol=1e-4, atol=1e-4), "SpMM result differs")
            elif op == "convert":
                self.stats.call("convert")
                to = rnd.choice(["csr", "coo", "csc", "bsr", "dense"] if sparse
                                else ["csr", "coo", "csc"])
                block = (min(2, want.shape[0]), min(2, want.shape[1]))
                got = c.convert(handle, to, block=block if to == "bsr" else None, inline=True)
                self.check(tenant, rec, op + " to " + to, np.array_equal(
                    dense_of(got).astype(np.float32), want.astype(np.float32)),
                    "converted values differ")
            elif op == "transpose":
                self.stats.call("transpose")
                got = c.transpose(handle, inline=True)
                self.check(tenant, rec, op, np.array_equal(dense_of(got).astype(np.float32),
                                                           want.T.astype(np.float32)),
                           "transpose differs")
            elif op == "inspect":
                self.stats.call("inspect")
                r = c.inspect(handle)
                stored = rec.nnz
                self.check(tenant, rec, op, r.stored == stored and
                           r.nonzeros == int(np.count_nonzero(want)),
                           "inspect stored %d nonzeros %d, expected %d %d" % (
                               r.stored, r.nonzeros, stored, np.count_nonzero(want)))
        except grpc.RpcError as e:
            if e.code() == SC.NOT_FOUND and not self.disrupted(gen):
                if self.gone(tenant, rec):
                    self.stats.inc("reads raced with a delete")
                    return
                self.stats.problem("lost", "%s: %s of acknowledged %s (%s) NOT_FOUND: %s" % (
                    tenant, op, rec.key, handle, e.details()))
                return
            raise

    def gone(self, tenant, rec):
        model = self.models[tenant]
        with model.lock:
            return rec.key not in model.live or rec.key in model.pending_del

    def check(self, tenant, rec, op, ok, what):
        self.stats.inc("results verified")
        if not ok:
            self.stats.problem("wrong result", "%s %s of %s (%s %s): %s" % (
                tenant, op, rec.key, rec.kind, rec.shape, what))

    def other_record(self, tenant, rnd):
        others = [t for t in USERS + [ADMIN] if t != tenant]
        rnd.shuffle(others)
        for t in others:
            model = self.models[t]
            with model.lock:
                if model.live:
                    return t, model.live[rnd.choice(list(model.live))]
        return None, None

    def cross_tenant_read(self, tenant, c, gen, rnd, rng, who):
        owner, rec = self.other_record(tenant, rnd)
        if rec is None:
            return
        handle = rec.name if (rec.name and rnd.random() < 0.5) else rec.id
        x = np.ones((rec.shape[1], 2), np.float32)
        ops = {
            "info": lambda: c.info(handle),
            "download": lambda: c.download(handle),
            "inspect": lambda: c.inspect(handle),
            "spmm": lambda: c.spmm(handle, x, inline=True),
            "convert": lambda: c.convert(handle, "coo", inline=True),
            "transpose": lambda: c.transpose(handle, inline=True),
            "delete": lambda: c.tensors.Delete(sc.ref(handle), timeout=CALL_TIMEOUT),
            "save": lambda: c.checkpoints.SaveCheckpoint(sc.checkpoint_pb.SaveCheckpointRequest(
                name="chaos-x", tensors=[sc.ref(handle)]), timeout=CALL_TIMEOUT),
        }
        op = rnd.choice(list(ops))
        self.stats.fault("cross-tenant attempts")
        self.stats.call("cross-tenant " + op)
        try:
            ops[op]()
        except grpc.RpcError as e:
            if e.code() == SC.NOT_FOUND or self.disrupted(gen):
                return
            if e.code() == SC.RESOURCE_EXHAUSTED:
                self.stats.inc("refused RESOURCE_EXHAUSTED")
                return
            # A cross-tenant operand in SpMM of a dense tensor may fail for its
            # shape only if the lookup succeeded: that would be a leak too.
            self.stats.problem("cross-tenant", "%s %s by %s of %s's %s (%s): %s %s" % (
                who, op, tenant, owner, rec.key, handle, e.code(), e.details()))
            return
        self.stats.problem("cross-tenant", "%s %s by %s of %s's %s (%s) SUCCEEDED" % (
            who, op, tenant, owner, rec.key, handle))
        self.stats.inc("cross-tenant successes")

    # ----- hostile ----------------------------------------------------
    def hostile_step(self, gen, address, clients, rnd, rng):
        action = rnd.choice(["bogus", "bogus", "garbage", "garbage", "garbage_stream", "invalid",
                             "invalid", "bomb_layer", "bomb_prune", "noauth", "noauth", "cross",
                             "cross", "cross", "admin", "ctl"])
        getattr(self, "hostile_" + action)(gen, address, clients, rnd, rng)
        time.sleep(rnd.uniform(0, 0.05))

    def raw_channel(self, clients, gen, address, tenant):
        key = ("raw-" + (tenant or ""), gen)
        if key not in clients:
            for k in [k for k in clients if k[1] != gen]:
                clients.pop(k).close()
            clients[key] = type("Raw", (), {})()
            clients[key].channel = sc.make_channel(address, token=self.tokens.get(tenant))
            clients[key].close = clients[key].channel.close
        return clients[key].channel

    def expect(self, gen, what, fn, codes, count_as=None):
        """Runs fn; an error code outside `codes` (or OK) is a problem unless
        the daemon was being killed."""
        try:
            fn()
        except grpc.RpcError as e:
            if self.disrupted(gen):
                return None
            if e.code() in codes:
                return e.code()
            if e.code() == SC.RESOURCE_EXHAUSTED:
                self.stats.inc("refused RESOURCE_EXHAUSTED")
                return e.code()
            self.stats.problem(count_as or "unexpected error", "%s: %s %s" % (
                what, e.code(), e.details()))
            return e.code()
        if not self.disrupted(gen):
            self.stats.problem(count_as or "bad input accepted", "%s: OK" % what)
        return SC.OK

    def hostile_bogus(self, gen, address, clients, rnd, rng):
        tenant = rnd.choice([None, rnd.choice(USERS)])
        ch = self.raw_channel(clients, gen, address, tenant)
        method = "/sparsed.v1.Nope/Method" + secrets.token_hex(rnd.randint(1, 8))
        if rnd.random() < 0.3:
            method = "/" + secrets.token_hex(4) + "." + secrets.token_hex(3) + "/" + \
                secrets.token_hex(5)
        call = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
        self.stats.fault("bogus methods")
        self.stats.call("bogus method")
        self.expect(gen, "bogus method " + method,
                    lambda: call(os.urandom(rnd.randint(0, 64)), timeout=10),
                    (SC.UNIMPLEMENTED, SC.UNAUTHENTICATED))

    UNARY = ["/sparsed.v1.Tensors/GetInfo", "/sparsed.v1.Tensors/List",
             "/sparsed.v1.Tensors/Inspect", "/sparsed.v1.Tensors/Create",
             "/sparsed.v1.Compute/Spmm",
             "/sparsed.v1.Compute/Convert", "/sparsed.v1.Compute/Transpose",
             "/sparsed.v1.Compute/Prune", "/sparsed.v1.Admin/GetStatus",
             "/sparsed.v1.Training/CreateLayer", "/sparsed.v1.Training/Forward",
             "/sparsed.v1.Checkpoints/RestoreCheckpoint",
             "/sparsed.v1.TrainingOps/Sddmm"]

    def hostile_garbage(self, gen, address, clients, rnd, rng):
        # As the admin tenant: garbage that happens to parse into something
        # valid can only create tensors there (no writer's key is affected).
        tenant = ADMIN
        ch = self.raw_channel(clients, gen, address, tenant)
        method = rnd.choice(self.UNARY)
        call = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
        data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 300)))
        self.stats.fault("malformed messages")
        self.stats.call("garbage bytes")
        try:
            call(data, timeout=10)
            self.stats.inc("garbage that parsed and succeeded")
        except grpc.RpcError as e:
            if not self.disrupted(gen):
                self.stats.inc("garbage refused " + e.code().name)

    def hostile_garbage_stream(self, gen, address, clients, rnd, rng):
        tenant = ADMIN
        ch = self.raw_channel(clients, gen, address, tenant)
        call = ch.stream_unary("/sparsed.v1.Tensors/Upload", request_serializer=None,
                               response_deserializer=None)
        msgs = [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 200)))
                for _ in range(rnd.randint(1, 5))]
        self.stats.fault("malformed messages")
        self.stats.call("garbage upload stream")
        try:
            call(iter(msgs), timeout=10)
            self.stats.inc("garbage that parsed and succeeded")
        except grpc.RpcError as e:
            if not self.disrupted(gen):
                self.stats.inc("garbage refused " + e.code().name)

    def hostile_invalid(self, gen, address, clients, rnd, rng):
        """Well-formed messages describing invalid tensors: INVALID_ARGUMENT
        (or a neighbour), never a held tensor."""
        tenant = rnd.choice(USERS)
        c = self.client(clients, tenant, gen, address)
        m = self.random_matrix(rng, "csr")
        while m.nnz < 2:
            m = self.random_matrix(rng, "csr")
        desc, parts = sc.to_components(m)
        parts = dict(parts)
        case = rnd.choice(["row_ptr_down", "col_out", "offset_past", "unknown_comp",
                           "missing_chunk", "nnz_lie", "neg_shape", "two_headers",
                           "chunk_first", "spmm_shape", "inline_short", "huge_dense"])
        key = "%s:bad%d" % (tenant, self.next_seq(tenant))
        hdr = lambda d: sc.tensors_pb.UploadRequest(header=sc.tensors_pb.UploadHeader(  # noqa
            desc=d, name="bad-" + key.replace(":", "-"), labels={"chaos_key": key}))
        chunk = lambda comp, arr, off=0: sc.tensors_pb.UploadRequest(  # noqa
            chunk=sc.pb.Chunk(component=comp, offset=off, data=arr.tobytes()))
        msgs = None
        fn = None
        if case == "row_ptr_down":
            rp = parts["row_ptr"].copy()
            rp[1], rp[-1] = rp[-1], rp[1]
            if rp[1] == rp[-1]:
                rp[-1] = -5
            msgs = [hdr(desc), chunk("row_ptr", rp), chunk("col_idx", parts["col_idx"]),
                    chunk("values", parts["values"])]
        elif case == "col_out":
            ci = parts["col_idx"].copy()
            ci[0] = m.shape[1] + rnd.randint(0, 1000)
            msgs = [hdr(desc), chunk("row_ptr", parts["row_ptr"]), chunk("col_idx", ci),
                    chunk("values", parts["values"])]
        elif case == "offset_past":
            msgs = [hdr(desc), chunk("row_ptr", parts["row_ptr"]),
                    chunk("col_idx", parts["col_idx"], off=1 << 40),
                    chunk("values", parts["values"])]
        elif case == "unknown_comp":
            msgs = [hdr(desc), chunk("row_ptr", parts["row_ptr"]),
                    chunk("col_idx", parts["col_idx"]), chunk("nonsense", parts["values"])]
        elif case == "missing_chunk":
            msgs = [hdr(desc), chunk("row_ptr", parts["row_ptr"])]
        elif case == "nnz_lie":
            d = sc.pb.TensorDesc()
            d.CopyFrom(desc)
            d.nnz = desc.nnz + 7
            msgs = [hdr(d), chunk("row_ptr", parts["row_ptr"]),
                    chunk("col_idx", parts["col_idx"]), chunk("values", parts["values"])]
        elif case == "neg_shape":
            d = sc.pb.TensorDesc()
            d.CopyFrom(desc)
            d.shape[0] = -3
            msgs = [hdr(d)]
        elif case == "two_headers":
            msgs = [hdr(desc), hdr(desc)]
        elif case == "chunk_first":
            msgs = [chunk("values", parts["values"]), hdr(desc)]
        elif case == "huge_dense":
            d = sc.pb.TensorDesc(format=sc.pb.DENSE, dtype=sc.pb.F32,
                                 shape=[10**6, 10**6])
            msgs = [hdr(d)]
        elif case == "spmm_shape":
            x = np.ones((m.shape[1] + 1, 3), np.float32)
            fn = lambda: c.spmm(m, x, inline=True)  # noqa: E731
        elif case == "inline_short":
            t = sc.inline(m)
            t.components[2].data = t.components[2].data[:-4]
            req = sc.compute_pb.ConvertRequest(source=sc.compute_pb.Operand(inline=t),
                                               to=sc.pb.COO,
                                               output=sc.compute_pb.Output(inline=True))
            fn = lambda: c.compute.Convert(req, timeout=CALL_TIMEOUT)  # noqa: E731
        if fn is None:
            fn = lambda: c.tensors.Upload(iter(msgs), timeout=CALL_TIMEOUT)  # noqa: E731
        self.stats.inc("bad inputs tried")
        self.stats.inc("bad input: " + case)
        self.stats.call("invalid tensor")
        self.expect(gen, "invalid input " + case, fn,
                    (SC.INVALID_ARGUMENT, SC.OUT_OF_RANGE, SC.FAILED_PRECONDITION,
                     SC.RESOURCE_EXHAUSTED))

    def hostile_bomb_layer(self, gen, address, clients, rnd, rng):
        c = self.client(clients, rnd.choice(USERS), gen, address)
        self.stats.fault("cost bombs")
        self.stats.call("cost bomb: create_layer")
        t0 = time.monotonic()
        self.expect(gen, "create_layer(1e6, 1e6)", lambda: c.create_layer(10**6, 10**6),
                    (SC.RESOURCE_EXHAUSTED,))
        self.stats.max_bomb = max(getattr(self.stats, "max_bomb", 0), time.monotonic() - t0)

    def hostile_bomb_prune(self, gen, address, clients, rnd, rng):
        c = self.client(clients, rnd.choice(USERS), gen, address)
        m = scipy.sparse.coo_matrix(([], ([], [])), shape=(1, 1), dtype=np.float32)
        source = sc.inline(m)
        source.desc.shape[:] = [3 * 10**8, 3 * 10**8]
        req = sc.compute_pb.PruneRequest(
            source=sc.compute_pb.Operand(inline=source),
            block=sc.compute_pb.BlockPrune(block=[1, 1], sparsity=0.5),
            output=sc.compute_pb.Output(inline=False))
        self.stats.fault("cost bombs")
        self.stats.call("cost bomb: block prune")
        self.expect(gen, "block prune of a 3e8 x 3e8 COO",
                    lambda: c.compute.Prune(req, timeout=0.5),
                    (SC.DEADLINE_EXCEEDED, SC.RESOURCE_EXHAUSTED, SC.CANCELLED))

    def hostile_noauth(self, gen, address, clients, rnd, rng):
        tok = rnd.choice(["", "wrong-" + secrets.token_hex(8),
                          self.tokens[rnd.choice(USERS)] + "x"])
        key = ("noauth-" + tok, gen)
        if key not in clients:
            for k in [k for k in clients if k[1] != gen]:
                clients.pop(k).close()
            clients[key] = sc.Client(address, token=tok or None)
        c = clients[key]
        owner, rec = self.other_record("", rnd)
        handle = rec.id if rec is not None else "t-00000000deadbeef"
        op = rnd.choice(["status", "list", "info", "download", "delete", "upload", "spmm"])
        fn = {"status": c.status, "list": c.list, "info": lambda: c.info(handle),
              "download": lambda: c.download(handle),
              "delete": lambda: c.delete(handle),
              "upload": lambda: c.upload(np.ones((2, 2), np.float32), name="noauth"),
              "spmm": lambda: c.spmm(handle, np.ones((rec.shape[1] if rec else 1, 1),
                                                     np.float32), inline=True)}[op]
        self.stats.fault("unauthenticated calls")
        self.stats.call("no/wrong token " + op)
        self.expect(gen, "%s without a valid token" % op, fn, (SC.UNAUTHENTICATED,),
                    count_as="auth bypass")

    def hostile_cross(self, gen, address, clients, rnd, rng):
        tenant = rnd.choice(USERS + [ADMIN])
        c = self.client(clients, tenant, gen, address)
        if rnd.random() < 0.2:
            # A made-up id and a made-up name: NOT_FOUND too.
            self.stats.call("made-up handle")
            self.expect(gen, "made-up id", lambda: c.info("t-%016x" % rnd.getrandbits(64)),
                        (SC.NOT_FOUND,))
            return
        self.cross_tenant_read(tenant, c, gen, rnd, rng, "hostile")

    def hostile_admin(self, gen, address, clients, rnd, rng):
        user = self.client(clients, rnd.choice(USERS), gen, address)
        admin = self.client(clients, ADMIN, gen, address)
        self.stats.call("user calls admin API")
        self.stats.fault("privilege attempts")
        self.expect(gen, "ListTune as user",
                    lambda: user.admin.ListTune(sc.admin_pb.ListTuneRequest(), timeout=10),
                    (SC.PERMISSION_DENIED,), count_as="privilege escalation")
        self.stats.call("admin status")
        st = admin.status()
        if st.role != "admin" or st.tenant != ADMIN:
            self.stats.problem("auth", "admin status says %s/%s" % (st.tenant, st.role))
        # The admin sees only its own tensors.
        self.stats.call("list")
        for t in admin.list():
            k = t.labels.get("chaos_key", "")
            if k and not k.startswith(ADMIN + ":"):
                self.stats.problem("cross-tenant", "admin lists %s (%s)" % (t.id, k))
                self.stats.inc("cross-tenant successes")

    def hostile_ctl(self, gen, address, clients, rnd, rng):
        choice = rnd.choice(["status", "tune", "notoken", "user-tune"])
        if choice == "status":
            self.stats.call("sparsectl status")
            p = self.ctl(rnd.choice(USERS), address, "status", timeout=10)
            ok = p.returncode == 0
        elif choice == "tune":
            self.stats.call("sparsectl tune ls")
            p = self.ctl(ADMIN, address, "tune", "ls", timeout=10)
            ok = p.returncode == 0
        else:
            self.stats.call("sparsectl refused")
            self.stats.fault("unauthenticated calls" if choice == "notoken"
                             else "privilege attempts")
            p = self.ctl(rnd.choice(USERS), address,
                         *(["ls"] if choice == "notoken" else ["tune", "ls"]),
                         token=choice != "notoken", timeout=10)
            ok = p.returncode != 0
        if not ok and not self.disrupted(gen):
            self.stats.problem("sparsectl", "%s: rc %d %s" % (choice, p.returncode,
                                                              p.stderr.strip()[:300]))

    # ----- staller ----------------------------------------------------
    def staller_step(self, gen, address, clients, rnd, rng):
        n = rnd.randint(3, 8)
        release = threading.Event()
        futures = []
        for i in range(n):
            tenant = rnd.choice(USERS)
            c = self.client(clients, tenant, gen, address)
            key = "%s:stall%d" % (tenant, self.next_seq(tenant))
            # 1000 x 1000 f32 declared: 4 MB the daemon reserves and must free.
            desc = sc.pb.TensorDesc(format=sc.pb.DENSE, dtype=sc.pb.F32, shape=[1000, 1000])
            first = sc.tensors_pb.UploadRequest(header=sc.tensors_pb.UploadHeader(
                desc=desc, name="stall-" + key.replace(":", "-"),
                labels={"chaos_key": key}))
            with_chunk = rnd.random() < 0.5

            def messages(first=first, with_chunk=with_chunk):
                yield first
                if with_chunk:
                    yield sc.tensors_pb.UploadRequest(chunk=sc.pb.Chunk(
                        component="values", offset=0, data=b"\0" * 4096))
                release.wait(60)

            futures.append(c.tensors.Upload.future(messages(), timeout=40))
        self.stats.fault("stalled streams", n)
        self.stats.call("stalled upload", n)
        t0 = time.monotonic()
        try:
            for f in futures:
                try:
                    f.result(timeout=max(0.1, 20 - (time.monotonic() - t0)))
                    if not self.disrupted(gen):
                        self.stats.problem("stall", "a stalled upload succeeded")
                except grpc.FutureTimeoutError:
                    if not self.disrupted(gen):
                        self.stats.problem("stall", "a stalled upload was not cancelled "
                                           "within 20 s (idle timeout 3 s)")
                    f.cancel()
                except grpc.RpcError as e:
                    if not self.disrupted(gen):
                        self.stats.inc("stalled uploads ended " + e.code().name)
            took = time.monotonic() - t0
            if not self.disrupted(gen):
                with self.stats.lock:
                    self.stats.c["stall rounds"] += 1
                    self.stall_max = max(getattr(self, "stall_max", 0.0), took)
        finally:
            release.set()
        self.sleep(rnd.uniform(1, 4))

    # ----- sampler ----------------------------------------------------
    def sampler(self):
        while True:
            with self.cv:
                if self.stop and self.proc is None:
                    return
                proc, up, metrics = self.proc, self.up, self.metrics
            if proc is not None:
                rss = threads = None
                try:
                    with open("/proc/%d/status" % proc.pid) as f:
                        for line in f:
                            if line.startswith("VmRSS:"):
                                rss = int(line.split()[1]) * 1024
                            elif line.startswith("Threads:"):
                                threads = int(line.split()[1])
                except OSError:
                    pass
                size = None
                if up:
                    try:
                        size = len(urllib.request.urlopen(
                            "http://%s/metrics" % metrics, timeout=3).read())
                    except Exception:  # noqa: BLE001
                        pass
                    if proc.poll() is not None and self.up and self.proc is proc:
                        self.stats.problem("crash", "the daemon exited by itself (code %s); "
                                           "log %s" % (proc.returncode, self.log_path))
                with self.stats.lock:
                    if rss:
                        self.max["rss"] = max(self.max["rss"], rss)
                    if threads:
                        self.max["threads"] = max(self.max["threads"], threads)
                    if size:
                        self.max["metrics"] = max(self.max["metrics"], size)
                    self.samples.append((time.time(), rss, threads, size))
            time.sleep(1.0)

    # ----- restarts and checks ----------------------------------------
    def park_all(self, timeout=90):
        deadline = time.monotonic() + timeout
        with self.cv:
            while self.parked < self.nworkers:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("workers did not stop within %d s (%d of %d parked)" % (
                        timeout, self.parked, self.nworkers))
                self.cv.wait(left)

    def resume(self):
        with self.cv:
            self.gen += 1
            self.up = True
            self.cv.notify_all()

    def verify(self, cutoff, final):
        """After a restart: every write acknowledged at or before `cutoff` is
        held with identical values, every delete acknowledged by then is not;
        writes and deletes after it may or may not have survived, and the model
        adopts what did. Returns (writes verified, deletes verified, uncovered
        writes lost)."""
        verified = deletes_verified = uncovered = 0
        for tenant in USERS + [ADMIN]:
            model = self.models[tenant]
            c = sc.Client(self.address, token=self.tokens[tenant])
            try:
                self.stats.call("list")
                present = {}
                for t in c.list():
                    k = t.labels.get("chaos_key", "")
                    if not k and tenant == ADMIN:
                        # Random bytes that parsed into a valid Create/Upload.
                        self.stats.note("admin holds an unlabelled tensor %s %r %s (garbage "
                                        "that parsed?)" % (t.id, t.name, list(t.desc.shape)))
                        continue
                    if not k.startswith(tenant + ":"):
                        self.stats.problem("cross-tenant" if k else "phantom",
                                           "%s lists %s %r (key %r)" % (tenant, t.id, t.name, k))
                        if k:
                            self.stats.inc("cross-tenant successes")
                        continue
                    present[k] = t

                def values_of(info, rec):
                    """Checksum of a held tensor; rec.mat becomes its values when
                    the model no longer has them."""
                    self.stats.call("download")
                    got = c.download(info.id)
                    if rec.mat is None:
                        rec.mat = got.tocoo() if rec.kind == "coo" else (
                            got.tocsr() if scipy.sparse.issparse(got) else got)
                    return checksum(got)

                with model.lock:
                    new_live = {}
                    for key, rec in model.live.items():
                        covered = rec.t_ack <= cutoff and key not in model.pending_del
                        if key in present:
                            info = present.pop(key)
                            if info.name != rec.name:
                                self.stats.problem("corrupt", "%s %s: name %r, written %r" % (
                                    tenant, key, info.name, rec.name))
                            if values_of(info, rec) != rec.sum:
                                self.stats.problem("corrupt", "%s %s (%s): values differ after "
                                                   "restore" % (tenant, key, rec.name))
                                self.stats.inc("writes changed")
                            rec.id = info.id
                            new_live[key] = rec
                            verified += 1 if covered else 0
                        elif covered:
                            self.stats.problem("lost", "%s %s (name %r, id %s) acknowledged at "
                                               "%.3f, checkpoint cutoff %.3f: missing after "
                                               "restart" % (tenant, key, rec.name, rec.id,
                                                            rec.t_ack, cutoff))
                            self.stats.inc("writes lost")
                        else:
                            uncovered += 1
                    for key, (rec, t_del) in list(model.deleted.items()):
                        if key in present:
                            info = present.pop(key)
                            same = values_of(info, rec) == rec.sum
                            if t_del <= cutoff:
                                self.stats.problem("resurrected", "%s %s (%r) deleted at %.3f, "
                                                   "cutoff %.3f: back after restart" % (
                                                       tenant, key, rec.name, t_del, cutoff))
                                self.stats.inc("deletes undone")
                            elif not same:
                                self.stats.problem("corrupt", "%s %s came back changed" % (
                                    tenant, key))
                            rec.id = info.id
                            rec.t_ack = time.time()
                            new_live[key] = rec
                            del model.deleted[key]
                            self.stats.inc("uncovered deletes undone (allowed)")
                        elif t_del <= cutoff:
                            deletes_verified += 1
                    for key, rec in list(model.pending.items()):
                        if key in present:
                            info = present.pop(key)
                            if final:
                                self.stats.problem("phantom", "%s %s present but never "
                                                   "acknowledged" % (tenant, key))
                            if values_of(info, rec) != rec.sum:
                                self.stats.problem("corrupt", "%s unacknowledged %s differs" % (
                                    tenant, key))
                            rec.id = info.id
                            rec.t_ack = time.time()
                            new_live[key] = rec
                            self.stats.inc("unacknowledged writes that survived")
                    model.pending.clear()
                    model.pending_del.clear()
                    model.live = new_live
                for key, info in present.items():
                    self.stats.problem("phantom", "%s holds %s (%r, key %r) that no write "
                                       "was acknowledged for" % (tenant, info.id, info.name, key))
                    self.stats.inc("phantom tensors")
            finally:
                c.close()
        return verified, deletes_verified, uncovered

    def kill_and_restart(self):
        t1 = self.last_checkpoint()
        deadline = time.monotonic() + 15
        t2 = t1
        while t2 <= t1:
            if time.monotonic() > deadline:
                self.stats.problem("checkpoint", "no periodic checkpoint completed within 15 s")
                break
            time.sleep(0.05)
            t2 = self.last_checkpoint()
        # Every write acknowledged at or before t1 was committed before the save
        # that completed at t2 began (saves run one after the other, 1 s apart).
        cutoff = t1
        with self.cv:
            self.up = False
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()
        self.stats.fault("SIGKILL")
        self.park_all()
        self.start(restore=True)
        verified, deletes, uncovered = self.verify(cutoff, final=False)
        self.stats.inc("writes checked after SIGKILL (held, same values)", verified)
        self.stats.inc("deletes checked after SIGKILL (still deleted)", deletes)
        self.stats.inc("writes newer than the last checkpoint, lost by SIGKILL (allowed)",
                       uncovered)
        print("[%6.1fs] SIGKILL #%d: %d acknowledged writes (held) and %d deletes (absent) "
              "older than the last checkpoint checked, %d newer writes not kept; restart "
              "%.2f s" % (time.monotonic() - self.t_start, self.stats.faults["SIGKILL"],
                          verified, deletes, uncovered, self.restart_seconds[-1]), flush=True)
        self.resume()

    # ----- the run ----------------------------------------------------
    def run(self):
        a = self.args
        print("chaos run: %d s, seed %s, data %s" % (a.seconds, a.seed, self.root), flush=True)
        self.start(restore=False)
        threads = []
        bodies = []
        for t in USERS:
            bodies.append(("writer-" + t, lambda g, ad, cl, r, n, t=t:
                           self.writer_step(t, g, ad, cl, r, n)))
            bodies.append(("reader-" + t, lambda g, ad, cl, r, n, t=t:
                           self.reader_step(t, g, ad, cl, r, n)))
        bodies.append(("writer-" + ADMIN, lambda g, ad, cl, r, n:
                       (self.writer_step(ADMIN, g, ad, cl, r, n), time.sleep(0.2))))
        bodies.append(("hostile", self.hostile_step))
        bodies.append(("staller", self.staller_step))
        self.nworkers = len(bodies)
        self.t_start = time.monotonic()
        self.resume()
        for name, body in bodies:
            th = threading.Thread(target=self.worker, args=(name, body), name=name, daemon=True)
            th.start()
            threads.append(th)
        sampler = threading.Thread(target=self.sampler, name="sampler", daemon=True)
        sampler.start()
        rnd = random.Random(a.seed)
        end = self.t_start + a.seconds
        # Every 20-30 s; a short run (debugging) gets one kill half way.
        next_kill = self.t_start + min(rnd.uniform(20, 30), max(5.0, a.seconds / 2))
        down_time = 0.0
        while time.monotonic() < end:
            if time.monotonic() >= next_kill and end - time.monotonic() > 8:
                t0 = time.monotonic()
                self.kill_and_restart()
                down_time += time.monotonic() - t0
                next_kill = time.monotonic() + rnd.uniform(20, 30)
            time.sleep(0.1)
            with self.stats.lock:
                crashed = self.stats.c["problem:crash"]
            if crashed:
                break
        chaos_seconds = time.monotonic() - self.t_start
        with self.cv:
            self.stop = True
            self.cv.notify_all()
        for th in threads:
            th.join(120)
            if th.is_alive():
                self.stats.problem("hang", "worker %s did not stop" % th.name)
        # Graceful stop: the exit checkpoint must hold every acknowledged write.
        with self.cv:
            self.up = False
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.stats.problem("shutdown", "SIGTERM: not exited within 60 s")
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        if rc != 0:
            self.stats.problem("shutdown", "SIGTERM: exit code %d" % rc)
        self.stats.fault("SIGTERM")
        self.start(restore=True)
        with self.cv:
            self.up = True
        acked = sum(len(m.live) for m in self.models.values())
        deleted = sum(len(m.deleted) for m in self.models.values())
        verified, deletes, uncovered = self.verify(float("inf"), final=True)
        self.stats.inc("writes checked after SIGTERM (held, same values)", verified)
        self.stats.inc("deletes checked after SIGTERM (still deleted)", deletes)
        if uncovered:
            self.stats.problem("lost", "%d writes missing after SIGTERM + restore" % uncovered)
        print("final SIGTERM (exit %d) + restore: %d live and %d deleted acknowledged tensors "
              "checked" % (rc, acked, deleted), flush=True)
        with self.cv:
            self.up = False
        self.proc.send_signal(signal.SIGTERM)
        rc2 = self.proc.wait(timeout=60)
        self.log.close()
        if rc2 != 0:
            self.stats.problem("shutdown", "last SIGTERM: exit code %d" % rc2)
        with self.cv:
            self.proc = None
        sampler.join(5)
        return self.summary(chaos_seconds, down_time, acked, deleted)

    def summary(self, seconds, down_time, live_at_end, deleted_at_end):
        s = self.stats
        total = sum(s.calls.values())
        lost = s.c["problem:lost"]
        cross = s.c["problem:cross-tenant"]
        print("\n===== sparsed chaos run summary =====")
        print("duration              %.1f s of load (%.1f s of it killing/restarting/checking), "
              "seed %s, device %s" % (seconds, down_time, self.args.seed, self.args.device))
        print("calls                 %d, %.0f calls/s" % (total, total / seconds))
        for k, v in sorted(s.calls.items(), key=lambda kv: -kv[1]):
            print("  %-34s %d" % (k, v))
        print("faults injected")
        for k, v in sorted(s.faults.items()):
            print("  %-34s %d" % (k, v))
        print("bad inputs tried      %d (+ %d garbage messages, %d duplicate names)" % (
            s.c["bad inputs tried"], s.faults["malformed messages"],
            s.c["bad inputs: duplicate name"]))
        print("acknowledged writes   %d (deletes %d); at the end %d held, %d deleted" % (
            s.c["acknowledged writes"], s.c["acknowledged deletes"], live_at_end,
            deleted_at_end))
        print("writes lost           %d" % lost)
        print("writes changed        %d" % s.c["problem:corrupt"])
        print("deletes undone        %d" % s.c["problem:resurrected"])
        print("cross-tenant successes %d" % cross)
        print("wrong results         %d of %d verified" % (s.c["problem:wrong result"],
                                                          s.c["results verified"]))
        print("restarts              %d, %.2f s max to serving" % (
            len(self.restart_seconds) - 1, max(self.restart_seconds)))
        print("stalled uploads: longest round until all were cancelled %.1f s" %
              getattr(self, "stall_max", 0.0))
        print("max RSS               %.1f MiB (bound %.0f MiB)" % (
            self.max["rss"] / 2**20, MAX_RSS / 2**20))
        print("max threads           %d (bound %d)" % (self.max["threads"], MAX_THREADS))
        print("max /metrics          %d bytes" % self.max["metrics"])
        print("other counts")
        for k, v in sorted(s.c.items()):
            if not k.startswith("problem:"):
                print("  %-50s %d" % (k, v))
        if s.notes:
            print("notes:", *s.notes, sep="\n  ")
        ok = True
        if self.max["threads"] >= MAX_THREADS:
            s.problem("bound", "threads %d >= %d" % (self.max["threads"], MAX_THREADS))
        if self.max["rss"] >= MAX_RSS:
            s.problem("bound", "RSS %d >= %d" % (self.max["rss"], MAX_RSS))
        if not self.max["rss"] or not self.max["threads"]:
            s.problem("sampler", "no samples")
        if s.problems:
            ok = False
            print("\nPROBLEMS (%d):" % len(s.problems))
            for kind, text in s.problems[:60]:
                print("  [%s] %s" % (kind, text))
        print("\nRESULT: %s (data and logs in %s)" % ("PASS" if ok else "FAIL", self.root))
        if ok and not self.args.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sparsed", required=True)
    p.add_argument("--sparsectl", required=True)
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="cpu", help="the daemon's --device (default cpu)")
    p.add_argument("--keep", action="store_true", help="keep the data dir and logs on success")
    args = p.parse_args()
    os.environ.pop("SPARSED_TOKEN", None)
    args.sparsed = os.path.abspath(args.sparsed)
    args.sparsectl = os.path.abspath(args.sparsectl)
    h = Harness(args)
    rc = 2
    try:
        rc = h.run()
    except BaseException:
        rc = 2
        if h.proc is not None and h.proc.poll() is None:
            h.proc.kill()  # first: printing may fail (a closed pipe)
        traceback.print_exc()
        print("RESULT: FAIL (harness error; data and logs in %s)" % h.root)
    finally:
        if h.proc is not None and h.proc.poll() is None:
            h.proc.kill()
    sys.exit(rc)


if __name__ == "__main__":
    main()
