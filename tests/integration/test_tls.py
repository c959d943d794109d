#!/usr/bin/env python3
"""TLS and mutual TLS on the gRPC listener (issue 17), through the Python
client and sparsectl (the C++ client), with certificates made by the openssl
CLI; the daemon's refusals of half-configured TLS; and that both clients put
the bearer token on every call (checked against a recording stand-in server,
since the daemon's token check is tested with it)."""

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import scipy.sparse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "client", "python"))
from daemon_util import Daemon  # noqa: E402

import grpc  # noqa: E402
import sparsed_client as sc  # noqa: E402

ARGS = None
CERTS = None  # directory with the PEM files, made once by setUpModule

OPENSSL_CNF = """
[req]
distinguished_name = dn
prompt = no
[dn]
CN = sparsed-test
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
[internal_ext]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:sparsed.internal
[client_ext]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
"""

# Variables the clients read: unset them so that the caller's shell cannot
# change what a test sends.
CLIENT_ENV = ("SPARSED_TOKEN", "SPARSED_TLS_CA", "SPARSED_TLS_CERT", "SPARSED_TLS_KEY",
              "SPARSED_TLS_SERVER_NAME", "SPARSED_ADDR")


def make_certificates(d):
    """ca, server (127.0.0.1/localhost), internal (DNS sparsed.internal only)
    and client signed by ca; rogue: a self-signed client certificate."""
    cnf = os.path.join(d, "openssl.cnf")
    with open(cnf, "w") as f:
        f.write(OPENSSL_CNF)
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    def self_signed(name, ext):
        openssl("req", "-x509", "-new", *newkey, "-keyout", name + ".key", "-out",
                name + ".pem", "-days", "2", "-subj", "/CN=sparsed-test-" + name,
                "-config", cnf, "-extensions", ext)

    def signed(name, ext):
        openssl("req", "-new", *newkey, "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=sparsed-test-" + name, "-config", cnf)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", cnf,
                "-extensions", ext)

    self_signed("ca", "ca_ext")
    signed("server", "server_ext")
    signed("internal", "internal_ext")
    signed("client", "client_ext")
    self_signed("rogue", "client_ext")


def need_certificates():
    """Makes the certificates on first use; skips the calling test class when
    there is no openssl (the token tests need none)."""
    global CERTS
    if shutil.which("openssl") is None:
        raise unittest.SkipTest("the openssl CLI is not on PATH")
    if CERTS is None:
        d = tempfile.mkdtemp(prefix="sparsed-tls-")
        make_certificates(d)
        CERTS = d


def tearDownModule():
    if CERTS:
        shutil.rmtree(CERTS, ignore_errors=True)


def pem(name):
    return os.path.join(CERTS, name)


def tls_args(cert="server", client_ca=False):
    args = ["--tls-cert", pem(cert + ".pem"), "--tls-key", pem(cert + ".key")]
    return args + (["--tls-client-ca", pem("ca.pem")] if client_ca else [])


def client_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
    env.update(extra)
    return env


def sparsectl(*args, env=None):
    return subprocess.run([ARGS.sparsectl, "--timeout", "10", *args], capture_output=True,
                          text=True, timeout=60, env=env or client_env())


def status_code(client, timeout=5):
    """The gRPC code of Admin.GetStatus through `client` (OK when it succeeds)."""
    try:
        client.admin.GetStatus(sc.admin_pb.StatusRequest(), timeout=timeout)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


class TlsCase(unittest.TestCase):
    cert = "server"  # the daemon's certificate
    client_ca = False  # mutual TLS

    @classmethod
    def setUpClass(cls):
        need_certificates()
        cls.daemon = Daemon(ARGS.sparsed, extra_args=tls_args(cls.cert, cls.client_ca))

    @classmethod
    def tearDownClass(cls):
        try:
            code = cls.daemon.stop()
        finally:
            cls.daemon.__exit__(None, None, None)
        assert code == 0, code

    def log(self):
        with open(self.daemon.log_path) as f:
            return f.read()

    def assertRefused(self, client):
        t0 = time.monotonic()
        code = status_code(client)
        self.assertIn(code, (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED))
        self.assertLess(time.monotonic() - t0, 10)

    def assertRoundTrip(self, client):
        a = scipy.sparse.random(40, 30, density=0.2, format="csr", dtype=np.float32,
                                random_state=np.random.default_rng(7))
        info = client.upload(a)
        back = client.download(info.id)
        self.assertEqual(back.shape, a.shape)
        np.testing.assert_array_equal(back.toarray(), a.toarray())
        dense = np.arange(12, dtype=np.float32).reshape(3, 4)
        np.testing.assert_array_equal(client.download(client.upload(dense).id), dense)


class TlsTest(TlsCase):

    def test_logs_that_tls_is_on(self):
        self.assertIn("TLS on: certificate " + pem("server.pem"), self.log())

    def test_client_with_the_ca_puts_and_gets(self):
        with sc.Client(self.daemon.address, tls_ca=pem("ca.pem")) as c:
            self.assertRoundTrip(c)

    def test_certificate_name_is_checked(self):
        port = self.daemon.address.rsplit(":", 1)[1]
        with sc.Client("localhost:" + port, tls_ca=pem("ca.pem")) as c:  # DNS:localhost
            self.assertEqual(status_code(c), grpc.StatusCode.OK)
        with sc.Client(self.daemon.address, tls_ca=pem("ca.pem"),
                       tls_server_name="elsewhere.example") as c:
            self.assertRefused(c)

    def test_plaintext_client_is_refused(self):
        with sc.Client(self.daemon.address) as c:
            self.assertRefused(c)

    def test_client_that_does_not_trust_the_ca_is_refused(self):
        with sc.Client(self.daemon.address, tls=True) as c:  # gRPC's default roots
            self.assertRefused(c)
        with sc.Client(self.daemon.address, tls_ca=pem("rogue.pem")) as c:
            self.assertRefused(c)

    def test_python_client_checks_its_options(self):
        with self.assertRaisesRegex(ValueError, "tls_ca .*missing.pem"):
            sc.Client(self.daemon.address, tls_ca=pem("missing.pem"))
        with self.assertRaisesRegex(ValueError, "tls_cert and tls_key"):
            sc.Client(self.daemon.address, tls_ca=pem("ca.pem"), tls_cert=pem("client.pem"))

    def test_sparsectl_status(self):
        p = sparsectl("--server", self.daemon.address, "--tls-ca", pem("ca.pem"), "status")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = sparsectl("--server", self.daemon.address, "status",
                      env=client_env(SPARSED_TLS_CA=pem("ca.pem")))
        self.assertEqual(p.returncode, 0, p.stderr)
        p = sparsectl("--server", self.daemon.address, "status")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("UNAVAILABLE", p.stderr)
        p = sparsectl("--server", self.daemon.address, "--tls-ca", pem("rogue.pem"), "status")
        self.assertEqual(p.returncode, 1, p.stdout)
        p = sparsectl("--server", self.daemon.address, "--tls-ca", pem("ca.pem"),
                      "--tls-server-name", "elsewhere.example", "status")
        self.assertEqual(p.returncode, 1, p.stdout)

    def test_sparsectl_checks_its_options(self):
        p = sparsectl("--server", self.daemon.address, "--tls-ca", pem("missing.pem"), "status")
        self.assertEqual(p.returncode, 1)
        self.assertIn("INVALID_ARGUMENT", p.stderr)
        self.assertIn("tls_ca_file '%s'" % pem("missing.pem"), p.stderr)
        p = sparsectl("--server", self.daemon.address, "--tls-ca", pem("ca.pem"), "--tls-cert",
                      pem("client.pem"), "status")
        self.assertEqual(p.returncode, 1)
        self.assertIn("tls_key_file", p.stderr)


class ServerNameOverrideTest(TlsCase):
    # A certificate for DNS:sparsed.internal only, served on 127.0.0.1.
    cert = "internal"

    def test_tls_server_name(self):
        with sc.Client(self.daemon.address, tls_ca=pem("ca.pem")) as c:
            self.assertRefused(c)
        with sc.Client(self.daemon.address, tls_ca=pem("ca.pem"),
                       tls_server_name="sparsed.internal") as c:
            self.assertEqual(status_code(c), grpc.StatusCode.OK)
        p = sparsectl("--server", self.daemon.address, "--tls-ca", pem("ca.pem"),
                      "--tls-server-name", "sparsed.internal", "status")
        self.assertEqual(p.returncode, 0, p.stderr)


class MutualTlsTest(TlsCase):
    client_ca = True

    def test_logs_that_mutual_tls_is_on(self):
        self.assertIn("mutual TLS on", self.log())
        self.assertIn(pem("ca.pem"), self.log())

    def test_client_with_a_certificate_from_the_ca_works(self):
        with sc.Client(self.daemon.address, tls_ca=pem("ca.pem"), tls_cert=pem("client.pem"),
                       tls_key=pem("client.key")) as c:
            self.assertRoundTrip(c)

    def test_client_without_a_certificate_is_refused(self):
        with sc.Client(self.daemon.address, tls_ca=pem("ca.pem")) as c:
            self.assertRefused(c)

    def test_rogue_certificate_is_refused(self):
        with sc.Client(self.daemon.address, tls_ca=pem("ca.pem"), tls_cert=pem("rogue.pem"),
                       tls_key=pem("rogue.key")) as c:
            self.assertRefused(c)

    def test_plaintext_client_is_refused(self):
        with sc.Client(self.daemon.address) as c:
            self.assertRefused(c)

    def test_sparsectl_status(self):
        base = ["--server", self.daemon.address, "--tls-ca", pem("ca.pem")]
        p = sparsectl(*base, "--tls-cert", pem("client.pem"), "--tls-key", pem("client.key"),
                      "status")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = sparsectl(*base, "status", env=client_env(SPARSED_TLS_CERT=pem("client.pem"),
                                                      SPARSED_TLS_KEY=pem("client.key")))
        self.assertEqual(p.returncode, 0, p.stderr)
        p = sparsectl(*base, "status")
        self.assertEqual(p.returncode, 1, p.stdout)
        p = sparsectl(*base, "--tls-cert", pem("rogue.pem"), "--tls-key", pem("rogue.key"),
                      "status")
        self.assertEqual(p.returncode, 1, p.stdout)


class StartupErrorsTest(unittest.TestCase):
    """Half-configured TLS stops the daemon at start with the key named."""

    @classmethod
    def setUpClass(cls):
        need_certificates()

    def start(self, *args, env=None):
        data = tempfile.mkdtemp(prefix="sparsed-tls-start-")
        try:
            return subprocess.run(
                [os.environ.get("SPARSED_DAEMON_BIN") or ARGS.sparsed, "--listen", "127.0.0.1:0",
                 "--metrics-listen", "", "--device", "cpu", "--data-dir", data, *args],
                capture_output=True, text=True, timeout=60, env=dict(os.environ, **(env or {})))
        finally:
            shutil.rmtree(data, ignore_errors=True)

    def assertRefusedToStart(self, p, *words):
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("cannot start", p.stdout + p.stderr)
        for w in words:
            self.assertIn(w, p.stdout + p.stderr)

    def test_cert_without_key(self):
        p = self.start("--tls-cert", pem("server.pem"))
        self.assertRefusedToStart(p, "tls_key", pem("server.pem"))
        p = self.start(env={"SPARSED_TLS_CERT": pem("server.pem")})
        self.assertRefusedToStart(p, "tls_key")

    def test_key_without_cert(self):
        self.assertRefusedToStart(self.start("--tls-key", pem("server.key")), "tls_cert")

    def test_client_ca_without_cert_and_key(self):
        p = self.start("--tls-client-ca", pem("ca.pem"))
        self.assertRefusedToStart(p, "tls_client_ca", "tls_cert")

    def test_files_that_are_not_pem(self):
        junk = os.path.join(CERTS, "junk.txt")
        with open(junk, "w") as f:
            f.write("this is not a certificate\n")
        p = self.start("--tls-cert", junk, "--tls-key", pem("server.key"))
        self.assertRefusedToStart(p, "tls_cert = '%s'" % junk, "PEM")
        p = self.start("--tls-cert", pem("server.pem"), "--tls-key", junk)
        self.assertRefusedToStart(p, "tls_key = '%s'" % junk)
        p = self.start(*tls_args(), "--tls-client-ca", junk)
        self.assertRefusedToStart(p, "tls_client_ca = '%s'" % junk)
        missing = pem("missing.pem")
        p = self.start("--tls-cert", missing, "--tls-key", pem("server.key"))
        self.assertRefusedToStart(p, "tls_cert = '%s'" % missing, "cannot be read")


class _Recorder(grpc.ServerInterceptor):
    """Records the metadata of every call, then lets it fail UNIMPLEMENTED."""

    def __init__(self):
        self.calls = []

    def intercept_service(self, continuation, details):
        self.calls.append((details.method, dict(details.invocation_metadata)))
        return None


class TokenTest(unittest.TestCase):
    """Both clients send "authorization: Bearer TOKEN" on every kind of call.
    A recording server stands in for the daemon, whose token check is not
    part of this test."""

    TOKEN = "tok-3a9f.X_y~z+/="

    def setUp(self):
        self.recorder = _Recorder()
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(4),
                                  interceptors=[self.recorder])
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.address = "127.0.0.1:%d" % port

    def tearDown(self):
        self.server.stop(None)

    def assertAllCarry(self, token):
        self.assertTrue(self.recorder.calls)
        for method, md in self.recorder.calls:
            self.assertEqual(md.get("authorization"), "Bearer " + token, method)

    def test_python_client(self):
        with sc.Client(self.address, token=self.TOKEN) as c:
            for call in (c.status,  # unary
                         lambda: c.upload(np.ones((2, 2), np.float32)),  # client stream
                         lambda: c.download("t-0123456789abcdef")):  # server stream
                with self.assertRaises(grpc.RpcError) as e:
                    call()
                self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        self.assertEqual(len(self.recorder.calls), 3)
        self.assertAllCarry(self.TOKEN)

    def test_python_client_token_from_the_environment(self):
        old = os.environ.get("SPARSED_TOKEN")
        os.environ["SPARSED_TOKEN"] = "from-env"
        try:
            with sc.Client(self.address) as c:
                self.assertRaises(grpc.RpcError, c.status)
        finally:
            if old is None:
                del os.environ["SPARSED_TOKEN"]
            else:
                os.environ["SPARSED_TOKEN"] = old
        self.assertAllCarry("from-env")
        with self.assertRaisesRegex(ValueError, "token") as e:
            sc.Client(self.address, token="two words")
        self.assertNotIn("two words", str(e.exception))

    def test_no_token_no_header(self):
        with sc.Client(self.address, token="") as c:
            self.assertRaises(grpc.RpcError, c.status)
        self.assertNotIn("authorization", self.recorder.calls[0][1])

    def test_sparsectl(self):
        p = sparsectl("--server", self.address, "--token", self.TOKEN, "status")
        self.assertEqual(p.returncode, 1)  # UNIMPLEMENTED from the stand-in
        self.assertIn("UNIMPLEMENTED", p.stderr)
        self.assertNotIn(self.TOKEN, p.stdout + p.stderr)
        p = sparsectl("--server", self.address, "status",
                      env=client_env(SPARSED_TOKEN="env-token"))
        self.assertNotIn("env-token", p.stdout + p.stderr)
        # A token given after the command (global options fall through) counts too.
        p = sparsectl("--server", self.address, "status", "--token", "after-the-command")
        self.assertEqual([md.get("authorization") for _, md in self.recorder.calls],
                         ["Bearer " + self.TOKEN, "Bearer env-token",
                          "Bearer after-the-command"])

    def test_sparsectl_never_prints_the_token(self):
        p = sparsectl("--help", env=client_env(SPARSED_TOKEN="secret-in-env"))
        self.assertEqual(p.returncode, 0)
        self.assertIn("--token", p.stdout)
        self.assertNotIn("secret-in-env", p.stdout + p.stderr)
        p = sparsectl("--server", self.address, "--token", "bad token", "status")
        self.assertEqual(p.returncode, 1)
        self.assertIn("INVALID_ARGUMENT", p.stderr)
        self.assertNotIn("bad token", p.stdout + p.stderr)
        self.assertEqual(self.recorder.calls, [])


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    p.add_argument("--sparsectl", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
