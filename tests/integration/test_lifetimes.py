#!/usr/bin/env python3
"""Lifetimes and zero-copy transfers through the real daemon (issue 19):
sessions that end with their stream, a killed client or a lapsed lease; TTLs;
and uploads/downloads through POSIX shared memory, compared with the gRPC
path and with the arrays that went in, with every misuse refused."""

import argparse
import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
from multiprocessing import shared_memory
from unittest import mock

import grpc
import numpy as np
import scipy.sparse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))
sys.path.insert(0, HERE)

import sparsed_client as sc  # noqa: E402
from daemon_util import Daemon  # noqa: E402
from sparsed.v1 import sessions_pb2, sessions_pb2_grpc  # noqa: E402
from sparsed.v1 import shared_memory_pb2 as shm_pb, shared_memory_pb2_grpc as shm_grpc  # noqa: E402
from sparsed.v1 import tensor_pb2, tensors_pb2, tensors_pb2_grpc  # noqa: E402

ARGS = None


def scrape(d):
    with urllib.request.urlopen("http://%s/metrics" % d.metrics, timeout=10) as r:
        return r.read().decode()


def wait_until(predicate, timeout=10):
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


class Session:
    """A Sessions.Open stream held open by this object; ping() renews it."""

    def __init__(self, channel, metadata=()):
        self._pings = queue.Queue()
        self._call = sessions_pb2_grpc.SessionsStub(channel).Open(
            iter(self._pings.get, None), metadata=metadata)
        first = next(self._call)
        self.id, self.lease_ms = first.session_id, first.lease_ms

    def ping(self):
        self._pings.put(sessions_pb2.SessionPing())

    def close(self):
        self._pings.put(None)  # ends the request stream: the session ends
        try:
            for _ in self._call:
                pass
        except grpc.RpcError:
            pass

    def cancel(self):
        self._call.cancel()


def csr_components(m):
    """(TensorDesc, [numpy arrays in canonical order]) of a float32 CSR matrix."""
    desc = tensor_pb2.TensorDesc(format=tensor_pb2.CSR, dtype=tensor_pb2.F32,
                                 index_dtype=tensor_pb2.I32, shape=m.shape, nnz=m.nnz)
    return desc, [m.indptr.astype("<i4"), m.indices.astype("<i4"), m.data.astype("<f4")]


def upload(channel, desc, arrays, name="", metadata=()):
    names = {tensor_pb2.CSR: ["row_ptr", "col_idx", "values"],
             tensor_pb2.DENSE: ["values"]}[desc.format]
    msgs = [tensors_pb2.UploadRequest(header=tensors_pb2.UploadHeader(desc=desc, name=name))]
    for n, a in zip(names, arrays):
        msgs.append(tensors_pb2.UploadRequest(chunk=tensor_pb2.Chunk(component=n, offset=0,
                                                                    data=a.tobytes())))
    return tensors_pb2_grpc.TensorsStub(channel).Upload(iter(msgs), metadata=metadata)


def dense_desc(shape):
    return tensor_pb2.TensorDesc(format=tensor_pb2.DENSE, dtype=tensor_pb2.F32, shape=shape)


def info(channel, tid, metadata=()):
    return tensors_pb2_grpc.TensorsStub(channel).GetInfo(tensor_pb2.TensorRef(id=tid),
                                                         metadata=metadata)


def exists(channel, tid):
    try:
        info(channel, tid)
        return True
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.NOT_FOUND:
            return False
        raise


def code_of(fn):
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


class SessionTest(unittest.TestCase):
    def test_a_closed_stream_releases_the_sessions_tensors_only(self):
        with Daemon(ARGS.sparsed) as d:
            ch = grpc.insecure_channel(d.address)
            s = Session(ch)
            self.assertRegex(s.id, r"^s-[0-9a-f]{16}$")
            self.assertEqual(s.lease_ms, 30000)
            md = (("sparsed-session", s.id),)
            x = np.arange(6, dtype="<f4")
            unnamed = upload(ch, dense_desc([6]), [x], metadata=md)
            named = upload(ch, dense_desc([6]), [x], name="kept", metadata=md)
            forced = upload(ch, dense_desc([6]), [x], name="forced",
                            metadata=md + (("sparsed-lifetime", "session"),))
            outside = upload(ch, dense_desc([6]), [x])
            self.assertEqual(unnamed.session_id, s.id)
            self.assertEqual(named.session_id, "")
            self.assertEqual(forced.session_id, s.id)
            self.assertEqual(outside.session_id, "")
            # A result of an op in the session belongs to it as well.
            a = scipy.sparse.random(4, 6, density=0.5, format="csr", dtype=np.float32,
                                    random_state=1)
            desc, arrays = csr_components(a)
            ha = upload(ch, desc, arrays, name="A")
            from sparsed.v1 import compute_pb2, compute_pb2_grpc
            b = upload(ch, dense_desc([6, 1]), [x], metadata=md)
            req = compute_pb2.SpmmRequest(
                a=compute_pb2.Operand(ref=tensor_pb2.TensorRef(id=ha.id)),
                b=compute_pb2.Operand(ref=tensor_pb2.TensorRef(id=b.id)),
                output=compute_pb2.Output(inline=False))
            result = compute_pb2_grpc.ComputeStub(ch).Spmm(req, metadata=md)
            self.assertEqual(result.tensor.session_id, s.id)
            # sparsectl ls shows the owner.
            ls = subprocess.run([ARGS.sparsectl, "--server", d.address, "ls"],
                                capture_output=True, text=True, check=True).stdout
            self.assertIn("session " + s.id, ls)
            self.assertEqual(info(ch, unnamed.id).session_id, s.id)
            s.close()
            self.assertTrue(wait_until(lambda: not exists(ch, unnamed.id)))
            for gone in (forced.id, b.id, result.tensor.id):
                self.assertFalse(exists(ch, gone))
            for kept in (named.id, outside.id, ha.id):
                self.assertTrue(exists(ch, kept))
            # The ended session cannot be used any more.
            code, details = code_of(lambda: upload(ch, dense_desc([6]), [x], metadata=md))
            self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
            self.assertIn("no open session '%s'" % s.id, details)
            self.assertIn('sparsed_tensors_released_total{reason="session"} 4', scrape(d))
            self.assertEqual(d.stop(), 0)

    def test_a_killed_client_and_a_lapsed_lease_end_their_sessions(self):
        with Daemon(ARGS.sparsed, ["--session-lease-seconds", "1"]) as d:
            script = """
import sys, queue, grpc
sys.path[:0] = %r
import sparsed_client
from sparsed.v1 import sessions_pb2, sessions_pb2_grpc, tensor_pb2, tensors_pb2, tensors_pb2_grpc
ch = grpc.insecure_channel(%r)
pings = queue.Queue()
call = sessions_pb2_grpc.SessionsStub(ch).Open(iter(pings.get, None))
sid = next(call).session_id
msgs = [tensors_pb2.UploadRequest(header=tensors_pb2.UploadHeader(desc=tensor_pb2.TensorDesc(
            format=tensor_pb2.DENSE, dtype=tensor_pb2.F32, shape=[2]))),
        tensors_pb2.UploadRequest(chunk=tensor_pb2.Chunk(component="values", data=bytes(8)))]
t = tensors_pb2_grpc.TensorsStub(ch).Upload(iter(msgs), metadata=(("sparsed-session", sid),))
print(t.id, flush=True)
import time
while True:
    pings.put(sessions_pb2.SessionPing())
    time.sleep(0.2)
""" % ([os.path.join(ROOT, "client", "python")] + sys.path, d.address)
            child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                     text=True)
            tid = child.stdout.readline().strip()
            ch = grpc.insecure_channel(d.address)
            self.assertTrue(tid.startswith("t-"), tid)
            time.sleep(1.5)  # it pings, so the 1 s lease holds
            self.assertTrue(exists(ch, tid))
            child.send_signal(signal.SIGKILL)
            child.wait()
            self.assertTrue(wait_until(lambda: not exists(ch, tid), timeout=10))
            # A client that holds the stream but never pings loses it after the lease.
            s = Session(ch)
            t = upload(ch, dense_desc([2]), [np.zeros(2, "<f4")],
                       metadata=(("sparsed-session", s.id),))
            self.assertTrue(wait_until(lambda: not exists(ch, t.id), timeout=10))
            with self.assertRaises(grpc.RpcError):
                for _ in s._call:
                    pass
            self.assertIn("sparsed_sessions_open 0", scrape(d))
            self.assertEqual(d.stop(), 0)

    def test_shutdown_is_not_held_by_open_sessions(self):
        with Daemon(ARGS.sparsed, ["--shutdown-grace-seconds", "20"]) as d:
            ch = grpc.insecure_channel(d.address)
            sessions = [Session(ch) for _ in range(3)]
            start = time.time()
            self.assertEqual(d.stop(), 0)
            # Far less than the 20 s grace. (gRPC takes about 5 s to let go of
            # a connected idle client, with or without sessions.)
            self.assertLess(time.time() - start, 10)
            del sessions

    def test_another_tenants_session_is_not_found(self):
        tokens = os.path.join(tempfile.mkdtemp(prefix="lifetimes-"), "tokens")
        with open(tokens, "w") as f:
            for token, tenant in (("alice-tok", "alice"), ("bob-tok", "bob")):
                f.write("%s %s user\n" % (hashlib.sha256(token.encode()).hexdigest(), tenant))
        with Daemon(ARGS.sparsed, ["--auth-tokens", tokens]) as d:
            ch = grpc.insecure_channel(d.address)
            alice = (("authorization", "Bearer alice-tok"),)
            bob = (("authorization", "Bearer bob-tok"),)
            s = Session(ch, metadata=alice)
            mine = upload(ch, dense_desc([2]), [np.zeros(2, "<f4")],
                          metadata=alice + (("sparsed-session", s.id),))
            self.assertEqual(mine.session_id, s.id)
            code, details = code_of(lambda: upload(ch, dense_desc([2]), [np.zeros(2, "<f4")],
                                                   metadata=bob + (("sparsed-session", s.id),)))
            self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
            self.assertIn("no open session", details)
            s.close()
            self.assertEqual(d.stop(), 0)


class TtlTest(unittest.TestCase):
    def test_tensors_expire_and_bad_ttls_are_refused(self):
        with Daemon(ARGS.sparsed) as d:
            ch = grpc.insecure_channel(d.address)
            x = np.ones(4, "<f4")
            t = upload(ch, dense_desc([4]), [x], name="brief",
                       metadata=(("sparsed-ttl-seconds", "1"),))
            self.assertEqual(t.expires_unix_ms - t.created_unix_ms, 1000)
            forever = upload(ch, dense_desc([4]), [x])
            self.assertEqual(forever.expires_unix_ms, 0)
            ctl = [ARGS.sparsectl, "--server", d.address]
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "x.npy")
                np.save(path, np.ones((2, 2), np.float32))
                subprocess.run(ctl + ["--ttl", "2", "put", path, "--name", "ctl"], check=True,
                               capture_output=True)
            listed = json.loads(subprocess.run(ctl + ["--json", "ls"], capture_output=True,
                                               text=True, check=True).stdout)
            by_name = {x.get("name"): x for x in listed["tensors"]}
            self.assertNotEqual(by_name["ctl"].get("expires_unix_ms", "0"), "0")
            self.assertIn("expires in", subprocess.run(ctl + ["ls"], capture_output=True,
                                                       text=True, check=True).stdout)
            self.assertTrue(wait_until(lambda: not exists(ch, t.id), timeout=10))
            self.assertTrue(wait_until(lambda: "ctl" not in subprocess.run(
                ctl + ["ls"], capture_output=True, text=True).stdout, timeout=10))
            self.assertTrue(exists(ch, forever.id))
            self.assertIn('sparsed_tensors_released_total{reason="ttl"} 2', scrape(d))
            # The daemon's own heartbeat calls (server/callback_cq_heartbeat.h,
            # ten a second) are neither counted nor logged as requests.
            self.assertNotIn("Health/Check", scrape(d))
            with open(d.log_path) as f:
                self.assertNotIn("Health/Check", f.read())
            for bad in ("0", "-3", "1.5", "abc", str(10**12)):
                code, details = code_of(lambda: upload(ch, dense_desc([4]), [x],
                                                       metadata=(("sparsed-ttl-seconds", bad),)))
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, bad)
                self.assertIn("sparsed-ttl-seconds = '%s'" % bad, details)
            code, details = code_of(lambda: upload(ch, dense_desc([4]), [x],
                                                   metadata=(("sparsed-lifetime", "session"),)))
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("needs sparsed-session", details)
            self.assertEqual(d.stop(), 0)


class SharedMemoryTest(unittest.TestCase):
    def setUp(self):
        self.objects = []

    def tearDown(self):
        for o in self.objects:
            o.close()
            try:
                o.unlink()
            except FileNotFoundError:
                pass

    def shm(self, size):
        o = shared_memory.SharedMemory(create=True, size=size)
        self.objects.append(o)
        return o

    def test_upload_and_download_equal_the_grpc_path(self):
        with Daemon(ARGS.sparsed) as d:
            ch = grpc.insecure_channel(d.address)
            stub = shm_grpc.SharedMemoryStub(ch)
            rng = np.random.default_rng(7)
            a = scipy.sparse.random(300, 200, density=0.05, format="csr", dtype=np.float32,
                                    random_state=rng)
            desc, arrays = csr_components(a)
            obj = self.shm(1 << 20)
            slices, offset = [], 128
            for arr in arrays:
                raw = arr.tobytes()
                obj.buf[offset:offset + len(raw)] = raw
                slices.append((offset, len(raw)))
                offset += len(raw) + 8  # deliberately unaligned
            reg = stub.Register(shm_pb.RegisterRegionRequest(name="in", key="/" + obj.name,
                                                             offset=0, byte_size=1 << 20))
            self.assertEqual(reg.key, "/" + obj.name)
            via_shm = stub.Upload(shm_pb.SharedUploadRequest(
                desc=desc, name="A_shm",
                components=[shm_pb.RegionSlice(region="in", offset=o, byte_size=n)
                            for o, n in slices]))
            via_grpc = upload(ch, desc, arrays, name="A_grpc")
            c = sc.Client(d.address)
            got_shm, got_grpc = c.download(via_shm.id), c.download(via_grpc.id)
            for got in (got_shm, got_grpc):
                self.assertEqual((got != a).nnz, 0)
            # Download into a second region; the components land where it says.
            out = self.shm(1 << 20)
            stub.Register(shm_pb.RegisterRegionRequest(name="out", key="/" + out.name,
                                                       byte_size=1 << 20))
            placed = stub.Download(shm_pb.SharedDownloadRequest(
                tensor=tensor_pb2.TensorRef(name="A_grpc"),
                into=shm_pb.RegionSlice(region="out", offset=64, byte_size=(1 << 20) - 64)))
            self.assertEqual([p.name for p in placed.components], ["row_ptr", "col_idx", "values"])
            for p, want in zip(placed.components, arrays):
                self.assertEqual(p.offset % 64, 0)
                self.assertEqual(bytes(out.buf[p.offset:p.offset + p.byte_size]), want.tobytes())
            self.assertEqual(placed.info.id, via_grpc.id)
            # A 256 MiB dense tensor both ways, equal to what went in.
            big = self.shm(256 << 20)
            x = np.frombuffer(big.buf, dtype="<f4")
            x[:] = rng.standard_normal(x.size, dtype=np.float32)
            stub.Register(shm_pb.RegisterRegionRequest(name="big", key="/" + big.name,
                                                       byte_size=256 << 20))
            t = stub.Upload(shm_pb.SharedUploadRequest(
                desc=dense_desc([64 << 20]),
                components=[shm_pb.RegionSlice(region="big", byte_size=256 << 20)]))
            expected = x.copy()
            x[:] = 0
            stub.Download(shm_pb.SharedDownloadRequest(
                tensor=tensor_pb2.TensorRef(id=t.id),
                into=shm_pb.RegionSlice(region="big", byte_size=256 << 20)))
            self.assertTrue(np.array_equal(x, expected))
            del x
            regions = stub.List(shm_pb.ListRegionsRequest()).regions
            self.assertEqual(sorted(r.name for r in regions), ["big", "in", "out"])
            c.close()
            self.assertEqual(d.stop(), 0)

    def test_every_misuse_is_refused_and_the_daemon_keeps_serving(self):
        with Daemon(ARGS.sparsed) as d:
            ch = grpc.insecure_channel(d.address)
            stub = shm_grpc.SharedMemoryStub(ch)
            obj = self.shm(4096)
            stub.Register(shm_pb.RegisterRegionRequest(name="r", key="/" + obj.name,
                                                       offset=1024, byte_size=2048))
            desc = dense_desc([100])

            def up(region="r", offset=0, size=400, desc=desc, metadata=()):
                return stub.Upload(shm_pb.SharedUploadRequest(
                    desc=desc, components=[shm_pb.RegionSlice(region=region, offset=offset,
                                                               byte_size=size)]),
                    metadata=metadata)

            cases = [
                (lambda: up(offset=1800), grpc.StatusCode.INVALID_ARGUMENT, "not inside region"),
                (lambda: up(size=396), grpc.StatusCode.INVALID_ARGUMENT,
                 "components[0].byte_size = 396"),
                (lambda: up(region="nope"), grpc.StatusCode.NOT_FOUND, "no shared-memory region"),
                (lambda: stub.Download(shm_pb.SharedDownloadRequest(
                    tensor=tensor_pb2.TensorRef(id=up().id),
                    into=shm_pb.RegionSlice(region="r", byte_size=100))),
                 grpc.StatusCode.RESOURCE_EXHAUSTED, "needs 400 bytes"),
                (lambda: stub.Register(shm_pb.RegisterRegionRequest(
                    name="big", key="/" + obj.name, byte_size=8192)),
                 grpc.StatusCode.INVALID_ARGUMENT, "runs past the end"),
                (lambda: stub.Register(shm_pb.RegisterRegionRequest(
                    name="x", key="/sparsed-no-such-object", byte_size=8)),
                 grpc.StatusCode.NOT_FOUND, "no shared-memory object"),
                (lambda: stub.Register(shm_pb.RegisterRegionRequest(
                    name="x", key="/../../etc/passwd", byte_size=8)),
                 grpc.StatusCode.INVALID_ARGUMENT, "may hold only"),
            ]
            for fn, code, text in cases:
                got, details = code_of(fn)
                self.assertEqual(got, code, details)
                self.assertIn(text, details)
            # Another session's region is not found; the session's own is, and
            # it goes when the session ends.
            s1, s2 = Session(ch), Session(ch)
            stub.Register(shm_pb.RegisterRegionRequest(name="s1r", key="/" + obj.name,
                                                       byte_size=4096),
                          metadata=(("sparsed-session", s1.id),))
            code, _ = code_of(lambda: up(region="s1r", metadata=(("sparsed-session", s2.id),)))
            self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
            code, _ = code_of(lambda: up(region="s1r"))
            self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
            self.assertEqual(up(region="s1r", metadata=(("sparsed-session", s1.id),)).session_id,
                             s1.id)
            s1.close()
            self.assertTrue(wait_until(
                lambda: "sparsed_shared_memory_regions 1" in scrape(d)))
            s2.close()
            # Unregistered: gone. Shrunk under a registered region: an error, no crash.
            stub.Unregister(shm_pb.RegionRef(name="r"))
            self.assertEqual(code_of(lambda: up())[0], grpc.StatusCode.NOT_FOUND)
            stub.Register(shm_pb.RegisterRegionRequest(name="r", key="/" + obj.name,
                                                       byte_size=4096))
            os.ftruncate(obj._fd, 100)
            code, details = code_of(lambda: up())
            self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION)
            self.assertIn("is now 100 bytes", details)
            self.assertEqual(upload(ch, dense_desc([1]), [np.zeros(1, "<f4")]).desc.shape, [1])
            self.assertEqual(d.stop(), 0)

    def test_off_and_with_authentication_by_default(self):
        tokens = os.path.join(tempfile.mkdtemp(prefix="lifetimes-"), "tokens")
        with open(tokens, "w") as f:
            f.write("%s alice user\n" % hashlib.sha256(b"alice-tok").hexdigest())
        obj = self.shm(64)
        for args, md in ((["--shared-memory", "off"], ()),
                         (["--auth-tokens", tokens], (("authorization", "Bearer alice-tok"),))):
            with Daemon(ARGS.sparsed, args) as d:
                stub = shm_grpc.SharedMemoryStub(grpc.insecure_channel(d.address))
                code, details = code_of(lambda: stub.Register(shm_pb.RegisterRegionRequest(
                    name="r", key="/" + obj.name, byte_size=64), metadata=md))
                self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION)
                self.assertIn("shared-memory transfers are off", details)
                self.assertEqual(d.stop(), 0)


class PythonClientTest(unittest.TestCase):
    """The same through the sparsed package's Client."""

    def test_sessions_ttl_and_shared_memory_from_the_client(self):
        import sparsed
        with Daemon(ARGS.sparsed) as d:
            other = sparsed.Client(d.address)
            c = sparsed.Client(d.address, session=True)
            x = np.arange(12, dtype=np.float32).reshape(3, 4)
            t = c.upload(x)
            self.assertEqual(t.session_id, c.session.id)
            kept = c.upload(x, name="kept")  # named: not the session's
            self.assertEqual(kept.session_id, "")
            c.close()
            self.assertTrue(wait_until(lambda: not exists(grpc.insecure_channel(d.address),
                                                          t.id)))
            self.assertEqual(other.info("kept").id, kept.id)
            with other.open_session() as s:
                held = other.spmm(scipy.sparse.eye(4, format="csr", dtype=np.float32),
                                  np.ones((4, 2), np.float32))
                self.assertEqual(held.session_id, s.id)
            self.assertIsNone(other.session)
            self.assertTrue(wait_until(lambda: held.id not in [i.id for i in other.list()]))
            brief = sparsed.Client(d.address, ttl=1)
            info = brief.upload(x)
            self.assertEqual(info.expires_unix_ms - info.created_unix_ms, 1000)
            self.assertTrue(wait_until(lambda: info.id not in [i.id for i in other.list()]))
            with self.assertRaises(ValueError):
                sparsed.Client(d.address, ttl=0)
            # Shared memory equals the gRPC path, for every format and dtype tried.
            rng = np.random.default_rng(3)
            a = scipy.sparse.random(50, 40, density=0.1, format="csr", dtype=np.float32,
                                    random_state=rng)
            h = rng.standard_normal((6, 5)).astype(np.float16)
            for data in (a, h, a.tocoo(), x):
                via_shm = other.upload_shared(data)
                via_grpc = other.upload(data)
                for got in (other.download_shared(via_shm.id), other.download(via_grpc.id),
                            other.download_shared(via_grpc.id)):
                    if scipy.sparse.issparse(data):
                        self.assertEqual(got.format, "csr" if data.format == "csr" else "coo")
                        self.assertEqual((got != data).nnz, 0)
                    else:
                        self.assertEqual(got.dtype, data.dtype)
                        np.testing.assert_array_equal(got, data)
            with other.scope():
                scoped = other.upload_shared(x)
            self.assertNotIn(scoped.id, [i.id for i in other.list()])
            with self.assertRaises(sparsed.NotFound):
                other.download_shared("t-00000000deadbeef")
            other.close()
            brief.close()
            self.assertEqual(d.stop(), 0)


class AsyncClientLifetimeTest(unittest.TestCase):
    def test_async_sessions_and_ttl(self):
        import asyncio
        import sparsed
        import sparsed.aio
        with Daemon(ARGS.sparsed, ["--session-lease-seconds", "1"]) as d:
            sync = sparsed.Client(d.address)

            def held():
                return [i.id for i in sync.list()]

            async def scenario():
                async with sparsed.aio.AsyncClient(d.address, ttl=60) as c:
                    async with await c.open_session() as s:
                        t = await c.upload(np.ones(4, np.float32))
                        self.assertEqual(t.session_id, s.id)
                        self.assertEqual(t.expires_unix_ms - t.created_unix_ms, 60000)
                        await asyncio.sleep(2.5)  # its pings keep the 1 s lease
                        self.assertIn(t.id, held())
                    self.assertIsNone(c.session)
                    return t.id
            tid = asyncio.run(scenario())
            self.assertTrue(wait_until(lambda: tid not in held()))
            sync.close()
            self.assertEqual(d.stop(), 0)


class AsyncSharedMemoryTest(unittest.TestCase):
    """upload_shared / download_shared of sparsed.aio.AsyncClient: the same
    data as went in, the same typed errors, and nothing left behind (no
    region in the daemon, no object in /dev/shm), also when cancelled."""

    def setUp(self):
        import sparsed.shared
        self.shared = sparsed.shared
        self.created = []  # every Region the client makes during the test
        created = self.created

        class Recorded(sparsed.shared.Region):
            def __init__(self, size):
                super().__init__(size)
                created.append(self)
        patcher = mock.patch.object(sparsed.shared, "Region", Recorded)
        patcher.start()
        self.addCleanup(patcher.stop)

    def assert_nothing_left(self, d):
        """No region registered in the daemon, and every object the client
        created is unlinked."""
        self.assertTrue(self.created)
        stub = shm_grpc.SharedMemoryStub(grpc.insecure_channel(d.address))
        self.assertEqual([r.name for r in stub.List(shm_pb.ListRegionsRequest()).regions], [])
        self.assertIn("sparsed_shared_memory_regions 0", scrape(d))
        for r in self.created:
            self.assertIsNone(r.shm)
            self.assertFalse(os.path.exists("/dev/shm" + r.key), r.key)

    def assert_same(self, got, want):
        """got equals the original data `want` exactly: type, format, dtype,
        shape and every component."""
        if scipy.sparse.issparse(want):
            self.assertTrue(scipy.sparse.issparse(got), type(got))
            self.assertEqual(got.format, want.format)
            self.assertEqual(got.shape, want.shape)
            self.assertEqual(got.dtype, want.dtype)
            names = {"csr": ("indptr", "indices", "data"), "coo": ("row", "col", "data")}
            for n in names[want.format]:
                g, w = getattr(got, n), getattr(want, n)
                self.assertEqual(g.dtype, w.dtype, n)
                np.testing.assert_array_equal(g, w, err_msg=n)
        else:
            self.assertIsInstance(got, np.ndarray)
            self.assertEqual(got.dtype, want.dtype)
            np.testing.assert_array_equal(got, want)

    def test_round_trip_equals_the_grpc_path(self):
        import asyncio
        import sparsed
        import sparsed.aio
        rng = np.random.default_rng(19)
        a = scipy.sparse.random(60, 45, density=0.1, format="csr", dtype=np.float32,
                                random_state=rng)
        a.indptr, a.indices = a.indptr.astype(np.int32), a.indices.astype(np.int32)
        cases = {
            "csr": a,
            "coo": a.tocoo(),
            "csr_f16": a.astype(np.float16),
            "f16": rng.standard_normal((7, 5)).astype(np.float16),
            "dense": rng.standard_normal((33, 17)).astype(np.float32),
            "vector": np.arange(10, dtype=np.float32),
        }
        with Daemon(ARGS.sparsed) as d:
            async def scenario():
                async with sparsed.aio.AsyncClient(d.address) as c:
                    for label, data in cases.items():
                        via_shm = await c.upload_shared(data, name=label + "_shm",
                                                        labels={"via": "shm"})
                        via_grpc = await c.upload(data, name=label + "_grpc")
                        self.assertEqual(via_shm.name, label + "_shm")
                        self.assertEqual(dict(via_shm.labels), {"via": "shm"})
                        self.assertEqual(via_shm.desc, via_grpc.desc, label)
                        for got in (await c.download_shared(via_shm.id),
                                    await c.download_shared(label + "_grpc"),
                                    await c.download(via_shm),
                                    await c.download(via_grpc)):
                            with self.subTest(label):
                                self.assert_same(got, cases[label])
                    # Concurrent transfers, each with its own region.
                    xs = [rng.standard_normal((64, 32)).astype(np.float32) for _ in range(6)]
                    infos = await asyncio.gather(*(c.upload_shared(x) for x in xs))
                    backs = await asyncio.gather(*(c.download_shared(i) for i in infos))
                    for x, back in zip(xs, backs):
                        self.assert_same(back, x)
                    # Scopes, sessions and typed errors as for the other methods.
                    async with c.scope():
                        scoped = await c.upload_shared(xs[0])
                    self.assertNotIn(scoped.id, [i.id for i in await c.list()])
                    async with await c.open_session() as s:
                        t = await c.upload_shared(xs[1])
                        self.assertEqual(t.session_id, s.id)
                        self.assert_same(await c.download_shared(t), xs[1])
                    with self.assertRaises(sparsed.NotFound):
                        await c.download_shared("t-00000000deadbeef")
                    with self.assertRaises(sparsed.AlreadyExists):
                        await c.upload_shared(xs[0], name="dense_shm")
                    with self.assertRaises(TypeError):  # refused before anything is sent
                        await c.upload_shared(np.ones(3))
            asyncio.run(scenario())
            self.assert_nothing_left(d)
            self.assertEqual(d.stop(), 0)

    def test_too_small_region_is_resource_exhausted(self):
        import asyncio
        import sparsed
        import sparsed.aio
        x = np.arange(1000, dtype=np.float32)
        with Daemon(ARGS.sparsed) as d, \
                mock.patch.object(self.shared, "download_region_bytes", lambda info: 64):
            sync = sparsed.Client(d.address)
            t = sync.upload(x)

            async def scenario():
                async with sparsed.aio.AsyncClient(d.address) as c:
                    with self.assertRaises(sparsed.ResourceExhausted) as cm:
                        await c.download_shared(t.id)
                    return cm.exception
            e = asyncio.run(scenario())
            self.assertIsInstance(e, grpc.RpcError)
            self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertIn("needs 4000", str(e))
            with self.assertRaises(sparsed.ResourceExhausted) as cm:  # the same as the sync one
                sync.download_shared(t.id)
            self.assertEqual(str(cm.exception), str(e))
            sync.close()
            self.assert_nothing_left(d)
            self.assertEqual(d.stop(), 0)

    def test_cancelled_uploads_leave_nothing_registered(self):
        import asyncio
        import sparsed
        import sparsed.aio
        big = np.random.default_rng(5).standard_normal(4 << 20).astype(np.float32)  # 16 MiB

        class Stalled:
            """The client's SharedMemory stub with one method held up: Upload
            never answers; Register is done by the daemon at once, but its
            answer comes only after a while."""

            def __init__(self, real, method):
                self.real, self.method, self.started = real, method, asyncio.Event()

            def __getattr__(self, name):
                return getattr(self.real, name)

            def Upload(self, request, **kw):
                if self.method != "Upload":
                    return self.real.Upload(request, **kw)
                self.started.set()
                return asyncio.get_running_loop().create_future()  # never done

            def Register(self, request, **kw):
                if self.method != "Register":
                    return self.real.Register(request, **kw)
                self.started.set()

                async def late():
                    info = await self.real.Register(request, **kw)
                    await asyncio.sleep(0.5)
                    return info
                return late()

        with Daemon(ARGS.sparsed) as d:
            async def regions(c):
                return [r.name for r in (await c.shared_memory.List(
                    shm_pb.ListRegionsRequest())).regions]

            async def scenario():
                async with sparsed.aio.AsyncClient(d.address) as c:
                    # Cancelled while the Upload is in flight, its region registered.
                    real = c.shared_memory
                    c.shared_memory = Stalled(real, "Upload")
                    task = asyncio.ensure_future(c.upload_shared(big))
                    await c.shared_memory.started.wait()
                    self.assertEqual(await regions(c), [self.created[-1].name])
                    task.cancel()
                    with self.assertRaises(asyncio.CancelledError):
                        await task
                    self.assertEqual(await regions(c), [])
                    # Cancelled before the Register's answer came: it is let
                    # finish, and then undone.
                    c.shared_memory = Stalled(real, "Register")
                    task = asyncio.ensure_future(c.upload_shared(big))
                    await c.shared_memory.started.wait()
                    task.cancel()
                    with self.assertRaises(asyncio.CancelledError):
                        await task
                    self.assertEqual(await regions(c), [])
                    # Against the real daemon, cancelled at whatever point it is.
                    c.shared_memory = real
                    for delay in (0, 0.0005, 0.002, 0.01, 0.05, 0.2):
                        task = asyncio.ensure_future(c.upload_shared(big))
                        await asyncio.sleep(delay)
                        task.cancel()
                        try:
                            await task
                        except asyncio.CancelledError:
                            pass
                        self.assertEqual(await regions(c), [], delay)
                    small = await c.upload(big[:1000])
                    for delay in (0.0005, 0.002, 0.01):
                        try:
                            await asyncio.wait_for(c.download_shared(small), delay)
                        except asyncio.TimeoutError:
                            pass
                        self.assertEqual(await regions(c), [], delay)
                    # The client still transfers afterwards.
                    t = await c.upload_shared(big)
                    self.assert_same(await c.download_shared(t), big)
            asyncio.run(scenario())
            self.assertGreaterEqual(len(self.created), 4)
            self.assert_nothing_left(d)
            self.assertEqual(d.stop(), 0)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    p.add_argument("--sparsectl", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
