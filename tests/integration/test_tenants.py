#!/usr/bin/env python3
"""Tokens and tenants (issue 17): with --auth-tokens every RPC needs a known
bearer token; a tenant reaches only its own tensors, layers and checkpoints
(another tenant's are NOT_FOUND, exactly as if they did not exist); users
get PERMISSION_DENIED on the admin APIs; SIGHUP rereads the token file.

The matrix: every RPC that takes a tensor or layer reference is tried by its
owner (works), by another tenant (NOT_FOUND, with the message a made-up id
gets), without a token and with a wrong token (UNAUTHENTICATED)."""

import argparse
import hashlib
import os
import signal
import sys
import tempfile
import time
import unittest
import urllib.request

import grpc
import numpy as np
import scipy.sparse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "client", "python"))
from daemon_util import Daemon  # noqa: E402
import sparsed_client as sc  # noqa: E402

ARGS = None
TOKENS = {"alice-token-1": ("alice", "user"), "bob-token-2": ("bob", "user"),
          "root-token-3": ("ops", "admin")}
MADE_UP_TENSOR = "t-00000000deadbeef"
MADE_UP_LAYER = "l-00000000deadbeef"


def write_tokens(path, tokens):
    with open(path, "w") as f:
        f.write("# test tokens\n")
        for token, (tenant, role) in tokens.items():
            f.write("%s %s %s\n" % (hashlib.sha256(token.encode()).hexdigest(), tenant, role))


def token_file(prefix):
    """A fresh token file holding TOKENS."""
    path = os.path.join(tempfile.mkdtemp(prefix=prefix), "tokens")
    write_tokens(path, TOKENS)
    return path


def tenant_clients(d):
    """Clients of tenants alice and bob on daemon `d`."""
    return (sc.Client(d.address, token="alice-token-1"),
            sc.Client(d.address, token="bob-token-2"))


def read(path):
    with open(path) as f:
        return f.read()


def scrape(d):
    with urllib.request.urlopen("http://%s/metrics" % d.metrics, timeout=10) as r:
        return r.read().decode()


def wait_for_metric(d, line, timeout=10):
    """True once the exposition holds `line` (polled for up to `timeout` s)."""
    deadline = time.time() + timeout
    while line not in scrape(d):
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


def graph_ref(handle):
    """A graph operand naming a held tensor by id or by name."""
    return {"ref": {"id": handle} if handle.startswith("t-") else {"name": handle}}


def code_of(fn):
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


class TenantTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(ARGS.sparsed, ["--auth-tokens", token_file("tenants-")])
        cls.clients = []

    @classmethod
    def tearDownClass(cls):
        for c in cls.clients:
            c.close()
        cls.daemon.__exit__(None, None, None)

    def client(self, token):
        c = sc.Client(self.daemon.address, token=token)
        self.clients.append(c)
        return c

    def test_no_token_wrong_token_and_health(self):
        for token in ("", "nobody-knows-this"):
            c = self.client(token)
            code, details = code_of(c.status)
            self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED, token)
            self.assertNotIn("nobody-knows-this", details)
            self.assertEqual(code_of(lambda: c.list())[0], grpc.StatusCode.UNAUTHENTICATED)
        # Health stays reachable for probes, without a token: an empty
        # HealthCheckRequest, answered SERVING (field 1 = 1).
        with grpc.insecure_channel(self.daemon.address) as ch:
            check = ch.unary_unary("/grpc.health.v1.Health/Check",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
            self.assertEqual(check(b"", timeout=10), b"\x08\x01")

    def test_isolation_matrix(self):
        alice, bob = self.client("alice-token-1"), self.client("bob-token-2")
        anon, wrong = self.client(""), self.client("wrong-token")
        m = scipy.sparse.random(16, 12, density=0.3, format="csr", dtype=np.float32,
                                random_state=1)
        x = np.random.default_rng(2).standard_normal((12, 5)).astype(np.float32)
        sparse = alice.upload(m, name="secret")
        dense = alice.upload(x, name="secret-x")
        layer = alice.create_layer(12, 16, sparsity=0.5, name="enc")

        # (rpc, op(client, reference), alice's tensor id, its name)
        tensor_ops = [
            ("GetInfo", lambda c, t: c.info(t), sparse),
            ("Download", lambda c, t: c.download(t), sparse),
            ("Inspect", lambda c, t: c.inspect(t), sparse),
            ("Spmm.a", lambda c, t: c.spmm(t, x, inline=True), sparse),
            ("Spmm.b", lambda c, t: c.spmm(m, t, inline=True), dense),
            ("Spmm.c", lambda c, t: c.spmm(m, x, beta=1.0, c=t, inline=True), None),
            ("Convert", lambda c, t: c.convert(t, "coo", inline=True), sparse),
            ("Transpose", lambda c, t: c.transpose(t, inline=True), sparse),
            ("Prune", lambda c, t: c.prune(t, sparsity=0.5, inline=True), sparse),
            ("SaveCheckpoint", lambda c, t: c.save_checkpoint("cp", [t]), sparse),
            ("DenseMatmul", lambda c, t: c.dense_matmul(t, np.ones((5, 3), np.float32)), dense),
            ("Sddmm.pattern", lambda c, t: c.sddmm(np.ones((16, 4), np.float32),
                                                   np.ones((4, 12), np.float32), t), sparse),
            ("Graphs.Run", lambda c, t: c.run({
                "ops": [{"name": "y", "spmm": {"a": graph_ref(t), "b": x}}],
                "outputs": [{"output": "y", "inline": True}]}), sparse),
            ("Delete", None, sparse),  # last: checked below without deleting
        ]
        c_target = alice.upload(np.zeros((16, 5), np.float32), name="secret-c")
        tensor_ops[5] = (tensor_ops[5][0], tensor_ops[5][1], c_target)
        layer_ops = [
            ("GetLayer", lambda c, l: c.get_layer(l)),
            ("Forward", lambda c, l: c.layer_forward(l, x.T.copy())),
            ("GetParameter", lambda c, l: c.layer_parameter(l)),
            ("DenseGradient", lambda c, l: c.dense_gradient(l)),
            ("Step", lambda c, l: c.layer_step(l)),
            ("Backward", lambda c, l: c.layer_backward(l, np.ones((5, 16), np.float32),
                                                         call_id="nope")),
            ("ForgetCall", lambda c, l: c.forget_call(l, "nope")),
        ]
        checked = 0
        for name, op, held in tensor_ops:
            if op is None:
                continue
            for target in (held.id, held.name):
                code, details = code_of(lambda: op(alice, target))
                self.assertEqual(code, grpc.StatusCode.OK, (name, target, details))
                code, details = code_of(lambda: op(bob, target))
                self.assertEqual(code, grpc.StatusCode.NOT_FOUND, (name, target, details))
                # worded exactly as for a handle that does not exist
                made_up = MADE_UP_TENSOR if target.startswith("t-") else "no-such-name"
                made_up_code, made_up_details = code_of(lambda: op(bob, made_up))
                self.assertEqual(made_up_code, grpc.StatusCode.NOT_FOUND)
                self.assertEqual(details.replace(target, "X"),
                                 made_up_details.replace(made_up, "X"), name)
                for c in (anon, wrong):
                    code, _ = code_of(lambda: op(c, target))
                    self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED, name)
                checked += 1
        for name, op in layer_ops:
            for target in (layer.id, "enc"):
                code, details = code_of(lambda: op(alice, target))
                self.assertNotEqual(code, grpc.StatusCode.UNAUTHENTICATED, (name, details))
                if code == grpc.StatusCode.NOT_FOUND:  # of the call id, never of the layer
                    self.assertIn("nope", details, name)
                code, details = code_of(lambda: op(bob, target))
                self.assertEqual(code, grpc.StatusCode.NOT_FOUND, (name, target, details))
                for c in (anon, wrong):
                    self.assertEqual(code_of(lambda: op(c, target))[0],
                                     grpc.StatusCode.UNAUTHENTICATED, name)
                checked += 1
        self.assertEqual(checked, 2 * (len(tensor_ops) - 1) + 2 * len(layer_ops))

        # Names are per tenant: bob may use alice's names, for his own tensors.
        bob_secret = bob.upload(m, name="secret")
        self.assertNotEqual(bob_secret.id, sparse.id)
        self.assertEqual(bob.info("secret").id, bob_secret.id)
        self.assertEqual(alice.info("secret").id, sparse.id)
        # Listing shows only one's own.
        # (other tests of this class share the daemon and add their own tensors)
        alice_ids, bob_ids = {t.id for t in alice.list()}, {t.id for t in bob.list()}
        self.assertLessEqual({sparse.id, dense.id, c_target.id}, alice_ids)
        self.assertIn(bob_secret.id, bob_ids)
        self.assertFalse(alice_ids & bob_ids)
        self.assertEqual([l.id for l in alice.list_layers()], [layer.id])
        self.assertEqual(list(bob.list_layers()), [])
        # Deleting another tenant's: NOT_FOUND, and nothing is deleted.
        for target in (sparse.id, "secret-x"):
            self.assertEqual(code_of(lambda: bob.delete(target))[0], grpc.StatusCode.NOT_FOUND)
            self.assertEqual(code_of(lambda: anon.delete(target))[0],
                             grpc.StatusCode.UNAUTHENTICATED)
        for target in (layer.id, "enc"):
            self.assertEqual(code_of(lambda: bob.delete_layer(target))[0],
                             grpc.StatusCode.NOT_FOUND)
        self.assertEqual(alice.info(sparse.id).id, sparse.id)
        self.assertEqual(alice.info("secret-x").id, dense.id)
        self.assertEqual(alice.get_layer(layer.id).id, layer.id)
        # Status counts one's own.
        st = bob.status()
        self.assertEqual((st.tenant, st.role, st.tensor_count), ("bob", "user", len(bob_ids)))
        self.assertEqual((st.data_dir, st.metrics_address), ("", ""))  # admins only
        st = alice.status()
        self.assertEqual((st.tenant, st.role, st.tensor_count), ("alice", "user", len(alice_ids)))
        alice.delete(sparse.id)
        self.assertEqual(code_of(lambda: alice.info(sparse.id))[0], grpc.StatusCode.NOT_FOUND)

    def test_checkpoints_are_per_tenant(self):
        alice, bob = self.client("alice-token-1"), self.client("bob-token-2")
        a = alice.upload(np.arange(6, dtype=np.float32).reshape(2, 3), name="ckpt-a")
        alice.save_checkpoint("mine")
        self.assertIn("mine", [c.name for c in alice.list_checkpoints()])
        self.assertNotIn("mine", [c.name for c in bob.list_checkpoints()])
        code, details = code_of(lambda: bob.restore_checkpoint("mine"))
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND, details)
        self.assertEqual(code_of(lambda: bob.delete_checkpoint("mine"))[0],
                         grpc.StatusCode.NOT_FOUND)
        # bob's checkpoint of the same name is his own file.
        bob.save_checkpoint("mine")
        alice.delete(a.id)
        restored = alice.restore_checkpoint("mine")
        self.assertIn("ckpt-a", [t.name for t in restored.restored])
        np.testing.assert_array_equal(alice.download("ckpt-a"),
                                      np.arange(6, dtype=np.float32).reshape(2, 3))
        self.assertEqual(code_of(lambda: bob.info("ckpt-a"))[0], grpc.StatusCode.NOT_FOUND)
        self.assertTrue(os.path.exists(os.path.join(
            self.daemon.data_dir, "checkpoints", "tenants", "alice", "mine.safetensors")))

    def test_admin_apis_need_the_admin_role(self):
        alice, root = self.client("alice-token-1"), self.client("root-token-3")
        from sparsed_client import admin_pb
        calls = {
            "ListTune": lambda c: c.admin.ListTune(admin_pb.ListTuneRequest()),
            "ExportTune": lambda c: c.admin.ExportTune(admin_pb.ExportTuneRequest()),
            "ImportTune": lambda c: c.admin.ImportTune(admin_pb.ImportTuneRequest(
                json='{"version": 1, "entries": []}')),
            "ClearTune": lambda c: c.admin.ClearTune(admin_pb.ClearTuneRequest()),
            "ListKernels": lambda c: c.admin.ListKernels(admin_pb.ListKernelsRequest()),
            "ClearKernels": lambda c: c.admin.ClearKernels(admin_pb.ClearKernelsRequest()),
        }
        for name, call in calls.items():
            code, details = code_of(lambda: call(alice))
            self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED, name)
            self.assertIn(name, details)
            code, details = code_of(lambda: call(root))
            self.assertNotIn(code, (grpc.StatusCode.PERMISSION_DENIED,
                                    grpc.StatusCode.UNAUTHENTICATED), (name, details))
        self.assertEqual(root.status().role, "admin")


class DaemonCheckpointTest(unittest.TestCase):
    def test_exit_checkpoint_and_restore_keep_each_tenant_apart(self):
        path = token_file("tenants-ckpt-")
        data = os.path.join(os.path.dirname(path), "data")
        args = ["--auth-tokens", path, "--checkpoint-on-exit", "--restore", "auto"]
        a_val = np.arange(6, dtype=np.float32).reshape(2, 3)
        b_val = -np.arange(4, dtype=np.float32).reshape(2, 2)
        # First start: nothing to restore yet, so without --restore.
        with Daemon(ARGS.sparsed, args[:3], data_dir=data) as d:
            alice, bob = tenant_clients(d)
            alice.upload(a_val, name="w")  # the same name in both tenants
            bob.upload(b_val, name="w")
            alice.create_layer(4, 3, name="enc")
            alice.close()
            bob.close()
            self.assertEqual(d.stop(), 0)
        with Daemon(ARGS.sparsed, args, data_dir=data) as d:
            alice, bob = tenant_clients(d)
            np.testing.assert_array_equal(alice.download("w"), a_val)
            np.testing.assert_array_equal(bob.download("w"), b_val)
            self.assertEqual([l.name for l in alice.list_layers()], ["enc"])
            self.assertEqual(list(bob.list_layers()), [])
            # bob deletes everything: the next exit checkpoint must not bring it back.
            bob.delete("w")
            alice.close()
            bob.close()
            self.assertEqual(d.stop(), 0)
        with Daemon(ARGS.sparsed, args, data_dir=data) as d:
            alice, bob = tenant_clients(d)
            self.assertEqual(list(bob.list()), [])
            np.testing.assert_array_equal(alice.download("w"), a_val)
            alice.close()
            bob.close()
            self.assertEqual(d.stop(), 0)


class QuotaTest(unittest.TestCase):
    def test_quotas_refuse_with_the_quota_named_and_are_counted(self):
        path = token_file("tenants-quota-")
        args = ["--auth-tokens", path, "--tenant-max-tensors", "3",
                "--tenant-max-bytes", "4096", "--tenant-max-checkpoint-bytes", "6000",
                "--tenant-max-requests-per-second", "1000"]
        with Daemon(ARGS.sparsed, args) as d:
            alice, bob = tenant_clients(d)
            alice.upload(np.zeros(512, np.float32))  # 2048 bytes
            code, details = code_of(lambda: alice.upload(np.zeros(513, np.float32)))
            self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertIn("tenant_max_bytes = 4096", details)
            alice.upload(np.zeros(4, np.float32))
            alice.upload(np.zeros(4, np.float32))
            code, details = code_of(lambda: alice.upload(np.zeros(4, np.float32)))
            self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertIn("tenant_max_tensors = 3", details)
            # A held result counts too; an inline one does not.
            x = alice.list()[1]
            self.assertEqual(code_of(lambda: alice.transpose(x.id))[0],
                             grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertEqual(code_of(lambda: alice.transpose(x.id, inline=True))[0],
                             grpc.StatusCode.OK)
            # bob is not affected by alice's quota.
            for _ in range(3):
                bob.upload(np.zeros(4, np.float32))
            # Checkpoints: 2 KiB of alice's data fit 6000 bytes twice, not three times.
            alice.save_checkpoint("one")
            alice.save_checkpoint("one")  # replacing a file does not count it twice
            alice.save_checkpoint("two")
            code, details = code_of(lambda: alice.save_checkpoint("three"))
            self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, details)
            self.assertIn("tenant_max_checkpoint_bytes = 6000", details)
            self.assertNotIn("three", [c.name for c in alice.list_checkpoints()])
            alice.delete_checkpoint("two")
            alice.save_checkpoint("three")
            metrics = scrape(d)
            for quota, n in (("tenant_max_bytes", 1), ("tenant_max_tensors", 2),
                             ("tenant_max_checkpoint_bytes", 1)):
                self.assertIn('sparsed_tenant_quota_refusals_total{tenant="alice",quota="%s"} %d'
                              % (quota, n), metrics)
            self.assertIn('sparsed_tenant_tensors{tenant="bob"} 3', metrics)
            alice.close()
            bob.close()
            self.assertEqual(d.stop(), 0)

    def test_stalled_calls_of_one_tenant_leave_the_others_served(self):
        import threading
        path = token_file("tenants-calls-")
        with Daemon(ARGS.sparsed, ["--auth-tokens", path,
                                   "--tenant-max-concurrent-calls", "3"]) as d:
            alice, bob = tenant_clients(d)
            release = threading.Event()
            desc, _ = sc.to_components(np.zeros(4, np.float32))

            def stalled():
                yield sc.tensors_pb.UploadRequest(header=sc.tensors_pb.UploadHeader(desc=desc))
                release.wait(30)

            held = [alice.tensors.Upload.future(stalled()) for _ in range(3)]
            # Wait on /metrics, not on alice's own calls: a probe of hers could
            # take a slot before the last upload does and be refused in its place.
            self.assertTrue(wait_for_metric(d, 'sparsed_tenant_open_calls{tenant="alice"} 3'))
            code, details = code_of(alice.status)
            self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, details)
            self.assertIn("tenant_max_concurrent_calls = 3", details)
            self.assertEqual(bob.status().tenant, "bob")  # others are served
            bob.upload(np.ones(3, np.float32), name="fine")
            release.set()
            for f in held:
                with self.assertRaises(grpc.RpcError):
                    f.result(timeout=30)  # the stream ended without its chunks
            self.assertEqual(alice.status().tenant, "alice")  # slots given back
            self.assertTrue(wait_for_metric(d, 'sparsed_tenant_open_calls{tenant="alice"} 0'))
            alice.close()
            bob.close()
            self.assertEqual(d.stop(), 0)

    def test_request_rate(self):
        path = token_file("tenants-rate-")
        with Daemon(ARGS.sparsed, ["--auth-tokens", path,
                                   "--tenant-max-requests-per-second", "5"]) as d:
            alice, bob = tenant_clients(d)
            codes = [code_of(alice.status)[0] for _ in range(20)]
            self.assertGreaterEqual(codes.count(grpc.StatusCode.OK), 5)
            self.assertIn(grpc.StatusCode.RESOURCE_EXHAUSTED, codes)
            self.assertEqual(code_of(bob.status)[0], grpc.StatusCode.OK)
            time.sleep(0.5)
            self.assertEqual(code_of(alice.status)[0], grpc.StatusCode.OK)
            alice.close()
            bob.close()
            self.assertEqual(d.stop(), 0)


class TokenReloadTest(unittest.TestCase):
    def test_sighup_rereads_the_file_and_keeps_it_on_errors(self):
        tmp = tempfile.mkdtemp(prefix="tenants-reload-")
        path = os.path.join(tmp, "tokens")
        write_tokens(path, {"old-token": ("alice", "user")})
        with Daemon(ARGS.sparsed, ["--auth-tokens", path]) as d:
            old, new = sc.Client(d.address, token="old-token"), sc.Client(d.address, token="new-token")
            self.assertEqual(old.status().tenant, "alice")
            self.assertEqual(code_of(new.status)[0], grpc.StatusCode.UNAUTHENTICATED)
            write_tokens(path, {"new-token": ("alice", "user")})
            d.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while code_of(new.status)[0] != grpc.StatusCode.OK and time.time() < deadline:
                time.sleep(0.05)
            self.assertEqual(new.status().tenant, "alice")
            self.assertEqual(code_of(old.status)[0], grpc.StatusCode.UNAUTHENTICATED)
            # A broken file is refused and the tokens before stay in force.
            with open(path, "w") as f:
                f.write("this is not a token line\n")
            d.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while "not reloaded" not in read(d.log_path) and time.time() < deadline:
                time.sleep(0.05)
            self.assertIn("not reloaded", read(d.log_path))
            self.assertEqual(new.status().tenant, "alice")
            old.close()
            new.close()
            self.assertEqual(d.stop(), 0)

    def test_a_bad_token_file_stops_the_start(self):
        tmp = tempfile.mkdtemp(prefix="tenants-bad-")
        path = os.path.join(tmp, "tokens")
        with open(path, "w") as f:
            f.write("abc alice user\n")
        import subprocess
        p = subprocess.run([ARGS.sparsed, "--listen", "127.0.0.1:0", "--metrics-listen", "",
                            "--device", "cpu", "--data-dir", os.path.join(tmp, "d"),
                            "--auth-tokens", path], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(path + ":1", p.stdout + p.stderr)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--sparsed", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
