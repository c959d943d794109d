"""Raw generated stubs of the Training and TrainingOps services, and small
helpers over them, for the integration tests (the Python client's own
training methods live in client/python/sparsed_client.py)."""

import importlib
import os
import sys

import numpy as np
import scipy.sparse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))

import sparsed_client as sc  # noqa: E402

if not os.path.exists(os.path.join(sc.PROTO_DIR, "sparsed", "v1", "training.proto")):
    raise RuntimeError("no training.proto in " + sc.PROTO_DIR)
if "training" not in sc.PROTO_FILES:
    # sparsed_client generated its stubs without training.proto: generate a
    # set with it and let the already imported sparsed.v1 package find it.
    out = sc.generate_stubs(names=sc.PROTO_FILES + ["training"])
    importlib.import_module("sparsed.v1").__path__.insert(0, os.path.join(out, "sparsed", "v1"))
training_pb = importlib.import_module("sparsed.v1.training_pb2")
training_grpc = importlib.import_module("sparsed.v1.training_pb2_grpc")


class Trainer:
    """The Training and TrainingOps stubs on a sparsed_client.Client's channel."""

    def __init__(self, client):
        self.client = client
        self.training = training_grpc.TrainingStub(client.channel)
        self.ops = training_grpc.TrainingOpsStub(client.channel)

    @staticmethod
    def ref(layer):
        if isinstance(layer, training_pb.LayerInfo):
            return training_pb.LayerRef(id=layer.id)
        if layer.startswith("l-") and len(layer) == 18:
            return training_pb.LayerRef(id=layer)
        return training_pb.LayerRef(name=layer)

    def create(self, **kw):
        return self.training.CreateLayer(training_pb.CreateLayerRequest(**kw))

    def info(self, layer):
        return self.training.GetLayer(self.ref(layer))

    def forward(self, layer, x, call_id=""):
        r = self.training.Forward(training_pb.ForwardRequest(
            layer=self.ref(layer), x=sc.compute_pb.Operand(inline=sc.inline(x)), call_id=call_id,
            output=sc.compute_pb.Output(inline=True)))
        return sc.from_inline(r.y.inline)

    def backward(self, layer, dy, call_id, want_dx=True):
        r = self.training.Backward(training_pb.BackwardRequest(
            layer=self.ref(layer), dy=sc.compute_pb.Operand(inline=sc.inline(dy)),
            call_id=call_id, want_dx=want_dx, output=sc.compute_pb.Output(inline=True)))
        return sc.from_inline(r.dx.inline) if want_dx else None

    def step(self, layer, grad_scale=0.0, optimizer=None):
        return self.training.Step(training_pb.StepRequest(
            layer=self.ref(layer), grad_scale=grad_scale, optimizer=optimizer))

    def param(self, layer, name):
        r = self.training.GetParameter(training_pb.GetParameterRequest(
            layer=self.ref(layer), parameter=name))
        return sc.from_inline(r.inline)


def dense(m):
    """A float64 numpy array from a scipy sparse matrix or an array."""
    return (m.toarray() if scipy.sparse.issparse(m) else np.asarray(m)).astype(np.float64)
