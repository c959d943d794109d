#!/usr/bin/env python3
"""Upload and download rate of one large dense tensor between a Python client
and the daemon: gRPC over loopback TCP, gRPC over a Unix socket, and the
SharedMemory service (POSIX shared memory, the bytes never crossing gRPC),
next to a plain memcpy of the same size in this process (numpy copyto into a
fresh buffer, page faults included as the daemon's fresh allocation has them,
and into a buffer already touched).

    /usr/bin/python3 bench/transfer_rate.py --sparsed build/server/sparsed [--mib 1024] [--rounds 5]

Prints one line per path with the median of the rounds in MiB/s and its
ratio to the fresh-buffer memcpy measured in the same run. Each round of
each path runs interleaved with the others; every transfer is checked
(the downloaded bytes equal what went up).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from multiprocessing import shared_memory

import grpc
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(ROOT, "client", "python"), os.path.join(ROOT, "tests", "integration")]

import sparsed_client  # noqa: E402,F401  (puts the generated modules on the path)
from daemon_util import Daemon  # noqa: E402
from sparsed.v1 import shared_memory_pb2 as shm_pb, shared_memory_pb2_grpc as shm_grpc  # noqa: E402
from sparsed.v1 import tensor_pb2, tensors_pb2, tensors_pb2_grpc  # noqa: E402

CHUNK = 1 << 20
OPTIONS = [("grpc.max_receive_message_length", 64 << 20),
           ("grpc.max_send_message_length", 64 << 20)]


def desc_of(x):
    return tensor_pb2.TensorDesc(format=tensor_pb2.DENSE, dtype=tensor_pb2.F32, shape=[x.size])


def grpc_upload(stub, x):
    raw = memoryview(x).cast("B")

    def messages():
        yield tensors_pb2.UploadRequest(header=tensors_pb2.UploadHeader(desc=desc_of(x)))
        for off in range(0, len(raw), CHUNK):
            yield tensors_pb2.UploadRequest(chunk=tensor_pb2.Chunk(
                component="values", offset=off, data=bytes(raw[off:off + CHUNK])))
    return stub.Upload(messages()).id


def grpc_download(stub, tid, nbytes):
    out = bytearray(nbytes)
    for msg in stub.Download(tensors_pb2.DownloadRequest(tensor=tensor_pb2.TensorRef(id=tid))):
        if msg.HasField("chunk"):
            c = msg.chunk
            out[c.offset:c.offset + len(c.data)] = c.data
    return out


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sparsed", required=True)
    p.add_argument("--mib", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    nbytes = args.mib << 20
    x = np.random.default_rng(1).standard_normal(nbytes // 4, dtype=np.float32)
    sock = os.path.join(tempfile.mkdtemp(prefix="sparsed-bench-"), "sparsed.sock")
    times = {k: [] for k in ("memcpy_fresh", "memcpy_warm", "tcp_up", "tcp_down", "unix_up",
                             "unix_down", "shm_up", "shm_down")}
    region = shared_memory.SharedMemory(create=True, size=nbytes)
    try:
        with Daemon(args.sparsed) as tcp_daemon, \
                Daemon(args.sparsed, listen="unix:" + sock) as unix_daemon:
            tcp = tensors_pb2_grpc.TensorsStub(grpc.insecure_channel(tcp_daemon.address,
                                                                     OPTIONS))
            unix = tensors_pb2_grpc.TensorsStub(grpc.insecure_channel("unix:" + sock, OPTIONS))
            shm_ch = grpc.insecure_channel(tcp_daemon.address, OPTIONS)
            shm, tensors = shm_grpc.SharedMemoryStub(shm_ch), tensors_pb2_grpc.TensorsStub(shm_ch)
            view = np.frombuffer(region.buf, dtype=np.float32)
            t_reg, _ = timed(lambda: shm.Register(shm_pb.RegisterRegionRequest(
                name="bench", key="/" + region.name, byte_size=nbytes)))
            warm = np.empty_like(x)
            warm[:] = 0
            for _ in range(args.rounds):
                dt, fresh = timed(lambda: np.copyto(np.empty_like(x), x))
                times["memcpy_fresh"].append(dt)
                times["memcpy_warm"].append(timed(lambda: np.copyto(warm, x))[0])
                for name, stub in (("tcp", tcp), ("unix", unix)):
                    dt, tid = timed(lambda: grpc_upload(stub, x))
                    times[name + "_up"].append(dt)
                    dt, back = timed(lambda: grpc_download(stub, tid, nbytes))
                    times[name + "_down"].append(dt)
                    assert back == x.tobytes(), name
                    stub.Delete(tensor_pb2.TensorRef(id=tid))
                    del back
                view[:] = x  # the client's own write into its region (not timed)
                dt, info = timed(lambda: shm.Upload(shm_pb.SharedUploadRequest(
                    desc=desc_of(x), components=[shm_pb.RegionSlice(region="bench",
                                                                    byte_size=nbytes)])))
                times["shm_up"].append(dt)
                view[:] = 0
                dt, _ = timed(lambda: shm.Download(shm_pb.SharedDownloadRequest(
                    tensor=tensor_pb2.TensorRef(id=info.id),
                    into=shm_pb.RegionSlice(region="bench", byte_size=nbytes))))
                times["shm_down"].append(dt)
                assert np.array_equal(view, x), "shm"
                tensors.Delete(tensor_pb2.TensorRef(id=info.id))
            del view
            shm.Unregister(shm_pb.RegionRef(name="bench"))
            tcp_daemon.stop()
            unix_daemon.stop()
    finally:
        region.close()
        region.unlink()
    rate = {k: nbytes / (1 << 20) / statistics.median(v) for k, v in times.items()}
    print("%d MiB dense f32, %d rounds, median; CPU backend; %s" % (args.mib, args.rounds,
                                                                    os.uname().nodename))
    print("shared-memory region registration: %.2f ms" % (t_reg * 1e3))
    for k in times:
        print("%-13s %9.1f MiB/s  %5.2fx memcpy_fresh  (median %.3f s)"
              % (k, rate[k], rate[k] / rate["memcpy_fresh"], statistics.median(times[k])))


if __name__ == "__main__":
    main()
