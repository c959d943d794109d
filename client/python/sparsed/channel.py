"""Channels to the daemon: plaintext or TLS (optionally mutual), and the
bearer token sent as `authorization: Bearer TOKEN` metadata on every call.

gRPC's call credentials would refuse a plaintext channel, and a daemon on
loopback is plaintext, so the token is added as plain metadata: by an
interceptor on sync channels (so raw stubs on Client.channel carry it too),
and per call by the asyncio client (`token_metadata`).
"""

import collections
import os

import grpc


def default_token(token):
    """token, or $SPARSED_TOKEN when token is None (an empty value: none)."""
    if token is None:
        token = os.environ.get("SPARSED_TOKEN") or None
    if token:
        # Visible ASCII only (RFC 6750); the message never repeats the token.
        if not all(0x20 < ord(ch) < 0x7F for ch in token):
            raise ValueError("token contains a space or a character that cannot be sent in "
                             "a header")
    return token or None


def token_metadata(token):
    """The metadata pairs that carry `token` (none without one)."""
    return (("authorization", "Bearer " + token),) if token else ()


def _read_pem(option, path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ValueError("%s %r cannot be read: %s" % (option, path, e.strerror)) from None


def credentials(tls=False, tls_ca=None, tls_cert=None, tls_key=None):
    """grpc.ChannelCredentials when TLS is wanted (tls true or any tls_* file
    given), else None. tls_ca: PEM CA bundle the server certificate must
    chain to (default: gRPC's roots); tls_cert + tls_key: PEM client
    certificate and key for mutual TLS."""
    if not (tls or tls_ca or tls_cert or tls_key):
        return None
    if bool(tls_cert) != bool(tls_key):
        raise ValueError("tls_cert and tls_key go together: a client certificate needs "
                         "its private key")
    return grpc.ssl_channel_credentials(
        root_certificates=_read_pem("tls_ca", tls_ca) if tls_ca else None,
        private_key=_read_pem("tls_key", tls_key) if tls_key else None,
        certificate_chain=_read_pem("tls_cert", tls_cert) if tls_cert else None)


def channel_options(options, creds, tls_server_name):
    """The channel options plus the TLS server name override."""
    options = list(options)
    if tls_server_name:
        if creds is None:
            raise ValueError("tls_server_name is set but the channel does not use TLS")
        options.append(("grpc.ssl_target_name_override", tls_server_name))
    return options


class _CallDetails(collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                         "compression")), grpc.ClientCallDetails):
    pass


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the token metadata to every call on a sync channel."""

    def __init__(self, token):
        self._metadata = list(token_metadata(token))

    def _with_token(self, d):
        return _CallDetails(d.method, d.timeout, list(d.metadata or ()) + self._metadata,
                            d.credentials, d.wait_for_ready, d.compression)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)


class ExtraMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                    grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the pairs `provider()` returns at the time of each call (the
    client's session and TTL, which change while the channel lives)."""

    def __init__(self, provider):
        self._provider = provider

    def _with(self, d):
        extra = list(self._provider())
        if not extra:
            return d
        return _CallDetails(d.method, d.timeout, list(d.metadata or ()) + extra, d.credentials,
                            d.wait_for_ready, d.compression)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._with(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._with(details), requests)


def make_channel(address, token=None, tls=False, tls_ca=None, tls_cert=None, tls_key=None,
                 tls_server_name=None, options=()):
    """A sync grpc channel to the daemon (TLS as for `credentials`); every
    call carries the bearer token if one is given (None here means none: the
    clients resolve $SPARSED_TOKEN themselves)."""
    creds = credentials(tls, tls_ca, tls_cert, tls_key)
    options = channel_options(options, creds, tls_server_name)
    channel = (grpc.secure_channel(address, creds, options=options) if creds is not None
               else grpc.insecure_channel(address, options=options))
    token = default_token(token) if token else None
    if token:
        channel = grpc.intercept_channel(channel, _BearerToken(token))
    return channel


def make_aio_channel(address, tls=False, tls_ca=None, tls_cert=None, tls_key=None,
                     tls_server_name=None, options=()):
    """A grpc.aio channel to the daemon (the token goes per call)."""
    creds = credentials(tls, tls_ca, tls_cert, tls_key)
    options = channel_options(options, creds, tls_server_name)
    if creds is not None:
        return grpc.aio.secure_channel(address, creds, options=options)
    return grpc.aio.insecure_channel(address, options=options)


def message_size_options(max_message_bytes):
    return [("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes)]
