#!/usr/bin/env python3
"""The real daemon driven by a Python client generated from the .proto files
with Debian's python3-grpcio; results compared with scipy."""

import argparse
import os
import sys
import unittest

import grpc
import numpy as np
import scipy.io
import scipy.sparse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))
sys.path.insert(0, HERE)

import sparsed_client as sc  # noqa: E402
from daemon_util import Daemon, expected_backend  # noqa: E402

ARGS = None


def std_stubs():
    """Stubs for grpc.health.v1 and grpc.reflection.v1alpha (tests/integration/protos)."""
    import importlib
    sc.generate_stubs(proto_dir=os.path.join(HERE, "protos"), names=["health", "reflection"],
                      package="")
    return importlib.import_module("health_pb2"), importlib.import_module("health_pb2_grpc"), \
        importlib.import_module("reflection_pb2"), importlib.import_module("reflection_pb2_grpc")


class PythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(ARGS.sparsed)
        cls.client = sc.Client(cls.daemon.address)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()  # an idle open channel delays the daemon's exit by ~5 s
        code = cls.daemon.stop()
        assert code == 0, "daemon exited with %d" % code

    def test_checkpoint_save_list_restore_delete(self):
        rng = np.random.default_rng(17)
        a = scipy.sparse.random(9, 7, density=0.3, format="csr", dtype=np.float32, random_state=rng)
        v = rng.standard_normal(5).astype(np.float32)
        ia = self.client.upload(a, name="ck-a", labels={"k": "v"})
        iv = self.client.upload(v)
        saved = self.client.save_checkpoint("py-ck", [ia.id, iv.id])
        self.assertEqual((saved.name, saved.tensors), ("py-ck", 2))
        listed = {c.name: c for c in self.client.list_checkpoints()}
        self.assertEqual(listed["py-ck"].tensors, 2)
        self.assertEqual(listed["py-ck"].bytes, saved.bytes)
        with self.assertRaises(grpc.RpcError) as cm:
            self.client.restore_checkpoint("py-ck")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
        self.client.delete(ia.id)
        self.client.delete(iv.id)
        r = self.client.restore_checkpoint("py-ck")
        self.assertEqual(sorted(r.id_map), sorted([ia.id, iv.id]))
        got_a = self.client.download("ck-a")
        self.assertEqual(abs(scipy.sparse.csr_matrix(got_a) - a).max(), 0)
        np.testing.assert_array_equal(self.client.download(r.id_map[iv.id]), v)
        self.assertEqual(dict(self.client.info("ck-a").labels), {"k": "v"})
        self.client.delete_checkpoint("py-ck")
        self.assertNotIn("py-ck", [c.name for c in self.client.list_checkpoints()])
        for bad, code in (("py-ck", grpc.StatusCode.NOT_FOUND),
                          ("../x", grpc.StatusCode.INVALID_ARGUMENT)):
            with self.assertRaises(grpc.RpcError) as cm:
                self.client.restore_checkpoint(bad)
            self.assertEqual(cm.exception.code(), code)
        self.client.delete("ck-a")
        self.client.delete(r.id_map[iv.id])

    def test_real_matrix_upload_spmm_download_matches_scipy(self):
        for name in ("zenios", "rajat01"):
            a = scipy.sparse.csr_matrix(scipy.io.mmread(os.path.join(ARGS.data, name + ".mtx")),
                                        dtype=np.float32)
            a.sum_duplicates()
            info = self.client.upload(a, name="py-" + name)
            self.assertEqual(info.desc.nnz, a.nnz)
            rng = np.random.default_rng(7)
            b = rng.standard_normal((a.shape[1], 16)).astype(np.float32)
            bias = rng.standard_normal(16).astype(np.float32)
            held = self.client.spmm(info, b, bias=bias, relu=True, name="py-out-" + name)
            got = self.client.download(held)
            want = np.maximum(a.astype(np.float64) @ b.astype(np.float64) + bias, 0)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
            # The matrix itself comes back exactly.
            back = self.client.download(info)
            self.assertEqual((back != a).nnz, 0)

    def test_transposes_and_sparse_right_operand_inline(self):
        rng = np.random.default_rng(3)
        s = scipy.sparse.random(40, 30, density=0.1, format="coo", dtype=np.float32,
                                random_state=4).tocsr().tocoo()  # canonical order
        x = rng.standard_normal((20, 40)).astype(np.float32)
        got = self.client.spmm(x, s, inline=True)  # dense @ sparse
        np.testing.assert_allclose(got, x.astype(np.float64) @ s.toarray(), rtol=1e-4, atol=1e-4)
        y = rng.standard_normal((30, 5)).astype(np.float32)
        got = self.client.spmm(s.tocsr(), y, transpose_a=False, inline=True)
        np.testing.assert_allclose(got, s.toarray() @ y, rtol=1e-4, atol=1e-4)
        z = rng.standard_normal((40, 5)).astype(np.float32)
        got = self.client.spmm(s.tocsr(), z, transpose_a=True, clamp_max=0.5, inline=True)
        np.testing.assert_allclose(got, np.minimum(s.toarray().T @ z, 0.5), rtol=1e-4, atol=1e-4)

    def test_health_and_reflection(self):
        health_pb2, health_grpc, refl_pb2, refl_grpc = std_stubs()
        resp = health_grpc.HealthStub(self.client.channel).Check(health_pb2.HealthCheckRequest())
        self.assertEqual(resp.status, health_pb2.HealthCheckResponse.SERVING)
        stub = refl_grpc.ServerReflectionStub(self.client.channel)
        replies = list(stub.ServerReflectionInfo(
            iter([refl_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in replies[0].list_services_response.service}
        for svc in ("sparsed.v1.Tensors", "sparsed.v1.Compute", "sparsed.v1.Admin",
                    "grpc.health.v1.Health"):
            self.assertIn(svc, names)

    def test_malformed_tensor_rejected_and_daemon_still_answers(self):
        bad = scipy.sparse.csr_matrix((np.ones(3, np.float32), np.array([0, 5, 1], np.int32),
                                       np.array([0, 2, 3], np.int32)), shape=(2, 4))
        with self.assertRaises(grpc.RpcError) as err:
            self.client.upload(bad)
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("col_idx", err.exception.details())
        with self.assertRaises(grpc.RpcError) as err:
            self.client.info("no-such-tensor")
        self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)
        status = self.client.status()
        if expected_backend() is not None:
            self.assertEqual(status.backend, expected_backend())
        active = [d.name for d in status.devices if d.active]
        self.assertEqual(len(active), 1, status)
        self.assertEqual(status.backend, "cpu" if active[0] == "cpu" else "cuda")

    def test_unsorted_duplicates_summed_on_request(self):
        coo = scipy.sparse.coo_matrix((np.array([1, 2, 3, 4], np.float32),
                                       (np.array([1, 0, 1, 0]), np.array([2, 1, 2, 0]))),
                                      shape=(2, 3))
        with self.assertRaises(grpc.RpcError):
            self.client.upload(coo)
        info = self.client.upload(coo, sort_and_sum_duplicates=True)
        self.assertEqual(info.desc.nnz, 3)
        got = self.client.download(info).toarray()
        np.testing.assert_array_equal(got, coo.toarray())


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    p.add_argument("--data", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
