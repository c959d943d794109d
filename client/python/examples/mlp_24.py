#!/usr/bin/python3
"""A 2:4 sparse MLP with sparsed: trains a 64→128→10 MLP on scikit-learn's
digits in NumPy, prunes both weights to 2:4 in the daemon, runs the test set
through it, and checks everything against NumPy.

    /usr/bin/python3 client/python/examples/mlp_24.py --address 127.0.0.1:50051 --dtype bf16

Steps:
  1. Train the dense MLP in NumPy (float32, Adam, fixed seeds).
  2. Upload each layer's weight W (out × in, as torch's nn.Linear holds it)
     in --dtype and prune it in the daemon to 2:4 (Compute.Prune, nm 2:4: the
     2 largest |w| of every 4 consecutive inputs of a row). Download the
     result (an NMTensor) and compare it, bit for bit, with the same pruning
     done here in NumPy on weights rounded to --dtype here.
  3. Forward the test set through the daemon: two SpMM calls on the 2:4
     handles, H = ReLU(X·W1ᵀ + b1) (held in the daemon, in --dtype) and
     logits = H·W2ᵀ + b2 (f32), bias and ReLU as the SpMM epilogue; and
     through NumPy with the NumPy-pruned weights.
  4. Print the dense accuracy, the 2:4 accuracies (daemon and NumPy) and the
     largest logit difference.

Exit status: 0 when the daemon's pruned weights equal NumPy's exactly and
both 2:4 accuracies agree; 1 when they do not; 2 when the daemon cannot be
used (unreachable, an error). --dtype f32 (the default) runs on every
backend; bf16 is what the GPU's 2:4 tensor-core kernels use. The NumPy side
never uses the client's converters: bf16 rounding is written out here.
Needs Debian's python3-sklearn and what the sparsed package needs (run from
a checkout after the build, or with the package installed).
"""

import argparse
import math
import os
import sys

import numpy as np

IN, HIDDEN, OUT = 64, 128, 10
N, M = 2, 4
STORAGE = {"f32": np.float32, "f16": np.float16, "bf16": np.uint16}  # bf16: bit patterns
BITS = {"f32": np.uint32, "f16": np.uint16, "bf16": np.uint16}


def import_sparsed():
    """The checkout's package (through client/python/sparsed_client.py and
    the build's generated stubs) when this file sits in a built checkout,
    else an installed `sparsed`."""
    here = os.path.dirname(os.path.abspath(__file__))
    package_dir = os.path.dirname(here)
    if os.path.isfile(os.path.join(package_dir, "sparsed_client.py")):
        sys.path.insert(0, package_dir)
        try:
            import sparsed_client  # noqa: F401 - loads the checkout's sparsed
        except ImportError:
            sys.path.remove(package_dir)  # no build stubs: try an installed package
    import sparsed
    return sparsed


# ---- data and dense training (NumPy) ----------------------------------------

def load_data(split_seed=0, test_fraction=0.2):
    """Pixels scaled to [0, 1] (float32) and a fixed stratified split:
    1437 training and 360 test images."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=split_seed, stratify=y)
    return x_train, y_train, x_test, y_test


def train_dense(x, y, epochs, batch, lr, seed):
    """Minibatch Adam on softmax cross-entropy; returns {w1, b1, w2, b2}
    (float32, weights shaped out × in)."""
    rng = np.random.default_rng(seed)

    def uniform(shape, fan_in):
        bound = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    p = {"w1": uniform((HIDDEN, IN), IN), "b1": uniform(HIDDEN, IN),
         "w2": uniform((OUT, HIDDEN), HIDDEN), "b2": uniform(OUT, HIDDEN)}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            xb, yb = x[idx], y[idx]
            h = np.maximum(xb @ p["w1"].T + p["b1"], 0)
            logits = h @ p["w2"].T + p["b2"]
            d = np.exp(logits - logits.max(1, keepdims=True))
            d /= d.sum(1, keepdims=True)
            d[np.arange(len(yb)), yb] -= 1
            d /= len(yb)  # d(mean cross-entropy)/d(logits)
            dh = (d @ p["w2"]) * (h > 0)
            grads = {"w2": d.T @ h, "b2": d.sum(0), "w1": dh.T @ xb, "b1": dh.sum(0)}
            t += 1
            for k, g in grads.items():
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                step = lr * (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps)
                p[k] = (p[k] - step).astype(np.float32)
    return p


# ---- the CPU reference: rounding, 2:4 pruning, forward pass -----------------

def to_storage(a, dtype):
    """float32 values as `dtype` stores them (round to nearest even):
    float32, float16, or bf16 bit patterns (uint16), the latter computed
    with integer arithmetic on the float32 bits (finite values)."""
    a = np.ascontiguousarray(a, np.float32)
    if dtype == "f32":
        return a.copy()
    if dtype == "f16":
        return a.astype(np.float16)
    u = a.view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def widen(stored, dtype):
    """Stored values (see to_storage) as float64, exactly."""
    stored = np.asarray(stored)
    if dtype == "bf16":
        return (stored.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return stored.astype(np.float64)


def prune_nm_numpy(w, dtype, n=N, m=M):
    """n:m pruning of stored values `w` (rows × cols) along the rows: in each
    group of m consecutive columns keep the n of largest |w|, the smaller
    position first among equal magnitudes. Returns (values, positions),
    both (rows, cols // m, n), positions ascending within a group."""
    rows, cols = w.shape
    groups = w.reshape(rows, cols // m, m)
    magnitude = np.abs(widen(groups, dtype))
    keep = np.argsort(-magnitude, axis=2, kind="stable")[..., :n]
    positions = np.sort(keep, axis=2)
    return np.take_along_axis(groups, positions, axis=2), positions


def nm_dense(values, positions, dtype, cols, m=M):
    """The (rows, cols) float64 matrix of an n:m (values, positions)."""
    rows, groups, n = values.shape
    out = np.zeros((rows, cols), np.float64)
    r = np.broadcast_to(np.arange(rows)[:, None, None], values.shape)
    c = np.arange(groups)[None, :, None] * m + positions
    out[r, c] = widen(values, dtype)
    return out


def forward_numpy(x, w1, b1, w2, b2, dtype):
    """The daemon's computation in float64: ReLU(X·W1ᵀ + b1) rounded to
    float32 and then to `dtype` (the hidden result's type), then H·W2ᵀ + b2
    as float32 logits. x: float32; w1, w2: dense float64; b1, b2: float32
    (SpMM's bias is f32 whatever the operands' type)."""
    xq = widen(to_storage(x, dtype), dtype)
    h = np.maximum(xq @ w1.T + b1.astype(np.float64), 0).astype(np.float32)
    hq = widen(to_storage(h, dtype), dtype)
    return (hq @ w2.T + b2.astype(np.float64)).astype(np.float32)


# ---- the daemon -------------------------------------------------------------

def prune_in_daemon(client, w, dtype):
    """Uploads float32 `w` as `dtype` and prunes it to 2:4 in the daemon;
    returns (the held NM tensor's TensorInfo, its data as an NMTensor with
    bf16 as bit patterns)."""
    dense = client.upload(w, dtype=dtype)
    held = client.prune(dense, nm=(N, M))
    client.delete(dense)
    return held, client.download(held, bf16="bits")


def same_pruning(name, got, want_values, want_positions, dtype):
    """Prints and returns whether the daemon's NMTensor `got` holds exactly
    the NumPy pruning (value bits and positions)."""
    rows, cols = want_values.shape[0], want_values.shape[1] * M
    problems = []
    if (tuple(got.shape), got.n, got.m) != ((rows, cols), N, M):
        problems.append("shape %s %d:%d, expected %s 2:4" % (got.shape, got.n, got.m,
                                                             (rows, cols)))
    elif got.value_type != dtype or got.values.dtype != np.dtype(STORAGE[dtype]):
        problems.append("values are %s as %s, expected %s" % (got.value_type, got.values.dtype,
                                                             dtype))
    else:
        got_bits = np.ascontiguousarray(got.values).view(BITS[dtype])
        want_bits = np.ascontiguousarray(want_values).view(BITS[dtype])
        bad = np.argwhere((got_bits != want_bits).any(axis=2)
                          | (got.positions != want_positions).any(axis=2))
        if len(bad):
            r, g = bad[0]
            problems.append(
                "%d of %d groups differ; first: row %d, group %d: sparsed kept positions %s "
                "values %s, NumPy kept %s values %s"
                % (len(bad), rows * cols // M, r, g, got.positions[r, g].tolist(),
                   widen(got.values[r, g], dtype).tolist(), want_positions[r, g].tolist(),
                   widen(want_values[r, g], dtype).tolist()))
    if problems:
        print("%s: 2:4 weights from sparsed differ from NumPy's: %s" % (name, problems[0]))
        return False
    print("%s: %dx%d weight pruned to 2:4 in sparsed, identical to NumPy's (%d of %d kept)"
          % (name, rows, cols, got.values.size, rows * cols))
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--address", default=os.environ.get("SPARSED_ADDR", "127.0.0.1:50051"),
                    help="the daemon's gRPC address (default: $SPARSED_ADDR or %(default)s)")
    ap.add_argument("--dtype", default="f32", choices=sorted(STORAGE),
                    help="value type of the weights and activations in the daemon "
                         "(default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    dtype = args.dtype

    x_train, y_train, x_test, y_test = load_data()
    p = train_dense(x_train, y_train, args.epochs, args.batch, args.lr, args.seed)
    dense_logits = np.maximum(x_test @ p["w1"].T + p["b1"], 0) @ p["w2"].T + p["b2"]
    dense_correct = int((dense_logits.argmax(1) == y_test).sum())

    # The CPU reference: round to dtype, prune, forward, all in NumPy.
    ref = {}
    for layer in ("w1", "w2"):
        ref[layer] = prune_nm_numpy(to_storage(p[layer], dtype), dtype)
    ref_w1 = nm_dense(*ref["w1"], dtype, IN)
    ref_w2 = nm_dense(*ref["w2"], dtype, HIDDEN)
    cpu_logits = forward_numpy(x_test, ref_w1, p["b1"], ref_w2, p["b2"], dtype)

    sparsed = import_sparsed()
    try:
        with sparsed.Client(args.address, timeout=120) as client, client.scope():
            weights_ok = True
            handles = {}
            for name, layer in (("fc1", "w1"), ("fc2", "w2")):
                handles[layer], got = prune_in_daemon(client, p[layer], dtype)
                weights_ok &= same_pruning(name, got, *ref[layer], dtype)
            # X·W1ᵀ + b1, ReLU: held in the daemon, in dtype; then H·W2ᵀ + b2 in f32.
            x = client.upload(x_test, dtype=dtype)
            h = client.spmm(x, handles["w1"], transpose_b=True, bias=p["b1"], relu=True)
            logits = client.spmm(h, handles["w2"], transpose_b=True, bias=p["b2"],
                                 out_dtype="f32", inline=True)
    except sparsed.Error as e:
        print("mlp_24: sparsed at %s: %s: %s" % (args.address, e.code().name, e),
              file=sys.stderr)
        return 2

    daemon_correct = int((logits.argmax(1) == y_test).sum())
    cpu_correct = int((cpu_logits.argmax(1) == y_test).sum())
    total = len(y_test)
    disagree = int((logits.argmax(1) != cpu_logits.argmax(1)).sum())
    diff = float(np.max(np.abs(logits.astype(np.float64) - cpu_logits)))

    print("dense accuracy (f32, NumPy): %.2f%% (%d/%d)"
          % (100.0 * dense_correct / total, dense_correct, total))
    print("2:4 accuracy (%s, sparsed): %.2f%% (%d/%d)"
          % (dtype, 100.0 * daemon_correct / total, daemon_correct, total))
    print("2:4 accuracy (%s, CPU NumPy): %.2f%% (%d/%d)"
          % (dtype, 100.0 * cpu_correct / total, cpu_correct, total))
    print("max abs logit difference: %.3g (predictions differ on %d of %d images)"
          % (diff, disagree, total))

    failures = []
    if not weights_ok:
        failures.append("the pruned weights differ")
    if daemon_correct != cpu_correct:
        failures.append("the 2:4 accuracies differ")
    if failures:
        print("FAILED: %s" % " and ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
