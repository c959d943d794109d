"""Typed exceptions for the gRPC status codes the daemon returns.

Every `sparsed.Client` / `sparsed.aio.AsyncClient` method raises a subclass of
`sparsed.Error` instead of gRPC's own error object. `Error` is itself a
`grpc.RpcError` with the `code()`, `details()` and `trailing_metadata()`
methods of a failed gRPC call, so code written against plain grpc
(`except grpc.RpcError as e: e.code()`) keeps working. `str(e)` is the
daemon's message (which names the offending field and value).

Each subclass also derives from the builtin exception that means the same, so
callers can stay generic:

    NotFound            LookupError
    InvalidArgument     ValueError
    OutOfRange          ValueError
    PermissionDenied    PermissionError
    Unauthenticated     PermissionError
    DeadlineExceeded    TimeoutError
    Unavailable         ConnectionError

ResourceExhausted deliberately is *not* a MemoryError: the daemon returns it
for its memory limit, but also when too many compute calls run at once or a
tenant's quota is used up, conditions that a retry later can clear and that
code catching MemoryError (a local out-of-memory) would mishandle.
AlreadyExists, FailedPrecondition, Aborted, Cancelled, Internal,
Unimplemented, DataLoss and Unknown derive from Error only.

Errors raised by the client before anything is sent (a dtype that would have
to be cast, a malformed option) are plain TypeError / ValueError, not Error.
"""

import grpc


class Error(grpc.RpcError):
    """A call the daemon (or gRPC) answered with a status other than OK.

    code(): the grpc.StatusCode; details(): the daemon's message (also
    str(error)); trailing_metadata(): the call's trailing metadata;
    rpc_error: the original grpc error, when there was one."""

    status = grpc.StatusCode.UNKNOWN  # the code each subclass stands for

    def __init__(self, details="", code=None, trailing_metadata=(), rpc_error=None):
        super().__init__(details)
        self._details = details or ""
        self._code = code or self.status
        self._trailing_metadata = tuple(trailing_metadata or ())
        self.rpc_error = rpc_error

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailing_metadata

    def debug_error_string(self):
        """gRPC's debug string of the original error ("" when there is none)."""
        f = getattr(self.rpc_error, "debug_error_string", None)
        return f() if callable(f) else ""

    def __str__(self):
        return self._details

    def __repr__(self):
        return "%s(%s: %r)" % (type(self).__name__, self._code.name, self._details)

    def __reduce__(self):
        return (type(self), (self._details, self._code, self._trailing_metadata))


def _define(name, code, *bases, doc):
    cls = type(name, (Error,) + bases, {"status": code, "__doc__": doc,
                                        "__module__": __name__})
    return cls


_C = grpc.StatusCode
Cancelled = _define("Cancelled", _C.CANCELLED, doc="The call was cancelled (CANCELLED).")
Unknown = _define("Unknown", _C.UNKNOWN, doc="UNKNOWN (also any code this module does not know).")
InvalidArgument = _define("InvalidArgument", _C.INVALID_ARGUMENT, ValueError,
                          doc="A malformed tensor, shape, name or option (INVALID_ARGUMENT).")
DeadlineExceeded = _define("DeadlineExceeded", _C.DEADLINE_EXCEEDED, TimeoutError,
                           doc="The call's deadline passed (DEADLINE_EXCEEDED).")
NotFound = _define("NotFound", _C.NOT_FOUND, LookupError,
                   doc="Unknown tensor, layer, checkpoint or call id (NOT_FOUND).")
AlreadyExists = _define("AlreadyExists", _C.ALREADY_EXISTS,
                        doc="The name is taken (ALREADY_EXISTS).")
PermissionDenied = _define("PermissionDenied", _C.PERMISSION_DENIED, PermissionError,
                           doc="The caller's role may not do this (PERMISSION_DENIED).")
ResourceExhausted = _define("ResourceExhausted", _C.RESOURCE_EXHAUSTED,
                            doc="Memory limit, quota or too many calls at once "
                                "(RESOURCE_EXHAUSTED); often worth a retry later.")
FailedPrecondition = _define("FailedPrecondition", _C.FAILED_PRECONDITION,
                             doc="The daemon is not in a state to do this (FAILED_PRECONDITION).")
Aborted = _define("Aborted", _C.ABORTED, doc="ABORTED.")
OutOfRange = _define("OutOfRange", _C.OUT_OF_RANGE, ValueError, doc="OUT_OF_RANGE.")
Unimplemented = _define("Unimplemented", _C.UNIMPLEMENTED,
                        doc="The daemon does not implement this (UNIMPLEMENTED).")
Internal = _define("Internal", _C.INTERNAL, doc="A daemon-side failure (INTERNAL).")
Unavailable = _define("Unavailable", _C.UNAVAILABLE, ConnectionError,
                      doc="The daemon cannot be reached or is shutting down (UNAVAILABLE).")
DataLoss = _define("DataLoss", _C.DATA_LOSS, doc="A checkpoint failed its checksum (DATA_LOSS).")
Unauthenticated = _define("Unauthenticated", _C.UNAUTHENTICATED, PermissionError,
                          doc="No valid token or client certificate (UNAUTHENTICATED).")

BY_CODE = {cls.status: cls for cls in (
    Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists,
    PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted, OutOfRange,
    Unimplemented, Internal, Unavailable, DataLoss, Unauthenticated)}


def from_rpc_error(e):
    """The typed Error for a grpc.RpcError (sync or grpc.aio); an Error is
    returned as it is. Errors without a code() (raised inside gRPC before the
    call started) become Unknown."""
    if isinstance(e, Error):
        return e
    code = e.code() if callable(getattr(e, "code", None)) else None
    details = e.details() if callable(getattr(e, "details", None)) else str(e)
    try:
        trailing = e.trailing_metadata() if callable(getattr(e, "trailing_metadata", None)) \
            else ()
    except Exception:  # noqa: BLE001 - metadata is a courtesy, never the error
        trailing = ()
    cls = BY_CODE.get(code, Unknown)
    return cls(details or "", code or cls.status, trailing, rpc_error=e)


__all__ = ["Error", "from_rpc_error", "BY_CODE"] + [c.__name__ for c in BY_CODE.values()]
