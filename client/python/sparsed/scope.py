"""Scopes: every tensor and layer a client creates while a scope is active
is deleted when the scope ends, whether the block finished or raised.

    with client.scope() as s:
        a = client.upload(m)             # deleted at the end of the block
        y = client.spmm(a, b)            # so is the held result
        keep = s.keep(client.convert(a, "bsr", block=4))   # survives the block

Scopes nest: a tensor belongs to the innermost active scope of the client
that created it. keep(h) hands h to the enclosing scope of the same client
(so it lives until that one ends), or out of all scopes when there is none.
The asyncio client's scopes are used with `async with`.

Scopes follow the current context (contextvars): calls made in the same
thread, or in the same asyncio task and tasks it starts, are tracked; calls
from other threads are not (run them under contextvars.copy_context() to
include them). Tensors deleted inside the block are skipped at the end; a
tensor that is already gone then (NOT_FOUND) is not an error.
"""

import contextvars
from typing import NamedTuple

from sparsed.proto import pb, training_pb

_active = contextvars.ContextVar("sparsed_scopes", default=())


class Owned(NamedTuple):
    kind: str  # "tensor" or "layer"
    id: str
    name: str


def owned_of(kind, info):
    """An Owned record for a TensorInfo / LayerInfo just created."""
    return Owned(kind, info.id, info.name)


def _key(handle):
    """(id or None, name or None) of a handle: info object, ref, id or name."""
    if isinstance(handle, (pb.TensorInfo, training_pb.LayerInfo)):
        return handle.id, None
    if isinstance(handle, (pb.TensorRef, training_pb.LayerRef)):
        return (handle.id or None), (handle.name or None)
    if isinstance(handle, str):
        return handle, handle  # an id, or a name: match either
    raise TypeError("not a tensor or layer handle: %r" % (handle,))


class Scope:
    """The bookkeeping of one scope; the clients add the with / async with
    protocol (sparsed.client.SyncScope, sparsed.aio.AsyncScope)."""

    def __init__(self, client):
        self._client = client
        self._owned = []
        self._open = False

    # ---- what the scope owns ----------------------------------------------
    @property
    def owned(self):
        """Owned records (kind, id, name) still to delete, oldest first."""
        return list(self._owned)

    def keep(self, handle):
        """Releases `handle` (TensorInfo, LayerInfo, id or name) from this
        scope; the enclosing scope of the same client, if any, takes it.
        Returns handle. KeyError when this scope does not own it."""
        ident, name = _key(handle)
        for i, o in enumerate(self._owned):
            if o.id == ident or (name is not None and o.name == name):
                del self._owned[i]
                outer = self._enclosing()
                if outer is not None:
                    outer._owned.append(o)
                return handle
        raise KeyError("this scope does not own %r" % (handle,))

    # ---- used by the clients ----------------------------------------------
    def _enclosing(self):
        stack = [s for s in _active.get() if s._client is self._client]
        i = stack.index(self) if self in stack else len(stack)
        return stack[i - 1] if i > 0 else None

    def _enter(self):
        if self._open:
            raise RuntimeError("this scope is already active")
        self._open = True
        _active.set(_active.get() + (self,))
        return self

    def _leave(self):
        """Deactivates the scope; returns what it owned, newest first."""
        self._open = False
        _active.set(tuple(s for s in _active.get() if s is not self))
        owned, self._owned = self._owned[::-1], []
        return owned


def innermost(client):
    """The client's innermost active scope in this context, or None."""
    for s in reversed(_active.get()):
        if s._client is client:
            return s
    return None


def track(client, owned):
    """Gives newly created resources to the client's innermost scope."""
    s = innermost(client)
    if s is not None:
        s._owned.extend(owned)


def untrack(client, kind, handle):
    """Forgets a resource deleted explicitly, in every active scope."""
    try:
        ident, name = _key(handle)
    except TypeError:
        return
    for s in _active.get():
        if s._client is client:
            s._owned = [o for o in s._owned if not (
                o.kind == kind and (o.id == ident or (name is not None and o.name == name)))]


def complete(client, call, response):
    """After a successful sparsed.calls.Call: records what it created in the
    client's innermost scope, forgets what it deleted, returns its result."""
    if call.created is not None:
        track(client, call.created(response))
    if call.deletes is not None:
        untrack(client, *call.deletes)
    return call.finish(response)


def raise_failures(exc, failures):
    """After a scope's deletions: failures [(Owned, Error)] are added as
    notes to `exc`, the exception escaping the block, if there is one (it
    stays the one raised); otherwise the first failure is raised, with the
    others as its notes."""
    if not failures:
        return
    target, rest = (exc, failures) if exc is not None else (failures[0][1], failures[1:])
    if hasattr(target, "add_note"):  # Python >= 3.11
        for o, err in rest:
            target.add_note("sparsed scope: could not delete %s %s: %s" % (o.kind, o.id, err))
    if exc is None:
        raise target
