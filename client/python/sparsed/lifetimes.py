"""Lifetimes of what a client creates (docs/API.md, "Lifetimes").

A Session holds a Sessions.Open stream for as long as it is open, pinging it
from a background thread; calls that carry its id (`sparsed-session`
metadata) create their unnamed tensors in it, and the daemon releases them
when the session ends: close(), the end of a `with` block, or this process
exiting or being killed. A TTL (`sparsed-ttl-seconds`) releases what calls
create after that many seconds.

    with client.open_session():
        y = client.spmm(a, b)          # held in the session, gone after the block
    client = sparsed.Client(addr, session=True, ttl=600)
"""

import queue
import threading

import grpc

from sparsed import errors
from sparsed.proto import sessions_grpc, sessions_pb

MAX_TTL_SECONDS = 366 * 24 * 3600


def check_ttl(ttl):
    """ttl as a whole number of seconds in [1, MAX_TTL_SECONDS], or None."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or int(ttl) != ttl or not 1 <= ttl <= MAX_TTL_SECONDS:
        raise ValueError("ttl = %r is not a whole number of seconds in [1, %d]"
                         % (ttl, MAX_TTL_SECONDS))
    return int(ttl)


class Session:
    """An open session of `channel` (a Sessions.Open stream). `id` is what
    calls send as `sparsed-session`; `lease_ms` the daemon's lease, pinged
    every third of it. close() ends it (idempotent)."""

    def __init__(self, channel, metadata=(), on_close=None):
        self._pings = queue.Queue()
        self._stop = threading.Event()
        self._on_close = on_close
        self._call = sessions_grpc.SessionsStub(channel).Open(iter(self._pings.get, None),
                                                             metadata=metadata)
        try:
            first = next(self._call)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None
        self.id, self.lease_ms = first.session_id, first.lease_ms
        self.ended = threading.Event()
        threading.Thread(target=self._drain, name="sparsed-session-read", daemon=True).start()
        threading.Thread(target=self._ping, name="sparsed-session-ping", daemon=True).start()

    def _drain(self):
        try:
            for _ in self._call:
                pass
        except grpc.RpcError:
            pass  # ended by close(), the daemon's shutdown, or a lapsed lease
        self.ended.set()

    def _ping(self):
        while not self._stop.wait(self.lease_ms / 3000.0):
            self._pings.put(sessions_pb.SessionPing())

    def close(self):
        if self._stop.is_set():
            return
        self._stop.set()
        self._pings.put(None)  # ends the request stream: the daemon ends the session
        self.ended.wait(timeout=10)
        if self._on_close is not None:
            self._on_close(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
