#!/usr/bin/python3
"""Trains a 64→256→10 MLP on scikit-learn's digits data set three ways and
prints one line per run:

    dense: test accuracy 97.2% (0.4 s)      the whole network in NumPy
    static: test accuracy …                  first layer in sparsed, 90% sparse, fixed pattern
    rigl: test accuracy …                    the same with RigL (drop |w|, grow |dense grad|)

The first layer (64→256, ReLU fused) lives in the daemon: its weights, their
gradients and the Adam state never leave it. Each minibatch costs three RPCs
(Forward with a call_id, Backward, Step with grad_scale 1/batch). The small
output layer (256→10, softmax cross-entropy) stays in NumPy on the client.
All runs share the data split, the output layer's initial weights, the
batch order and the optimizer; seeds are fixed, so a run is repeatable.

    /usr/bin/python3 client/python/train_digits.py --server 127.0.0.1:50051

--emulate runs the sparse variants with a NumPy emulation of the daemon's
layer (masked weights, the same RigL schedule) instead, without a daemon:
what the hyper-parameters were tuned with. Needs Debian's python3-sklearn,
python3-numpy and, without --emulate, what sparsed_client.py needs.
"""

import argparse
import math
import os
import sys
import time

import numpy as np

IN, HIDDEN, OUT = 64, 256, 10


def load_data(split_seed=0, test_fraction=0.2):
    """(x_train, y_train, x_test, y_test): pixels scaled to [0, 1], a fixed
    stratified split (360 of the 1797 images for testing)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=split_seed, stratify=y)
    return x_train, y_train, x_test, y_test


class Adam:
    """Adam on a dict of NumPy arrays (bias-corrected, as in the daemon)."""

    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        self.params, self.lr, self.b1, self.b2, self.eps = params, lr, beta1, beta2, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads):
        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        for k, g in grads.items():
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g * g
            self.params[k] -= self.lr * (self.m[k] / c1) / (np.sqrt(self.v[k] / c2) + self.eps)


def uniform(rng, shape, bound):
    return rng.uniform(-bound, bound, shape).astype(np.float32)


class OutputLayer:
    """256→10 logits in NumPy, with its own Adam."""

    def __init__(self, seed, lr):
        rng = np.random.default_rng(seed)
        b = 1 / math.sqrt(HIDDEN)
        self.p = {"w": uniform(rng, (OUT, HIDDEN), b), "b": np.zeros(OUT, np.float32)}
        self.opt = Adam(self.p, lr)

    def forward(self, h):
        return h @ self.p["w"].T + self.p["b"]

    def backward_step(self, h, dlogits, scale):
        """Returns dH, then applies the update for the batch's summed gradient × scale."""
        dh = dlogits @ self.p["w"]
        self.opt.step({"w": scale * (dlogits.T @ h), "b": scale * dlogits.sum(0)})
        return dh


class NumpyHidden:
    """64→256 + ReLU in NumPy: dense (sparsity 0), or a masked emulation of
    the daemon's sparse layer (same initial distributions, bias
    U(-1/sqrt(in), 1/sqrt(in)); not the same random draws), optionally with
    RigL on the daemon's schedule: at step t (updates so far) with t %
    interval == 0 and t < end_step, drop the round(f(t)·nnz) active weights of
    smallest |w|, f(t) = (α/2)(1 + cos(πt/end_step)), and grow as many
    positions inactive before the drop with the largest |dZᵀX| of the last
    batch (Z before the ReLU), at zero with their optimizer state reset."""

    def __init__(self, seed, lr, sparsity=0.0, init="dense_prune", rigl=None):
        rng = np.random.default_rng(seed)
        shape, n = (HIDDEN, IN), HIDDEN * IN
        keep = n - int(round(sparsity * n))
        if init == "random_pattern" and sparsity > 0:
            mask = np.zeros(n, bool)
            mask[rng.choice(n, keep, replace=False)] = True
            w = uniform(rng, shape, 1 / math.sqrt(IN * (1 - sparsity)))
        else:
            w = uniform(rng, shape, 1 / math.sqrt(IN))
            mask = np.zeros(n, bool)
            mask[np.argsort(-np.abs(w).ravel(), kind="stable")[:keep]] = True
        self.mask = mask.reshape(shape)
        self.p = {"w": w * self.mask, "b": uniform(rng, HIDDEN, 1 / math.sqrt(IN))}
        self.opt = Adam(self.p, lr)
        self.rigl = rigl
        self.pending = {}
        self.grads = None
        self.steps = 0
        self.dropped = self.grown = 0

    def forward(self, x, call_id=""):
        h = np.maximum(x @ self.p["w"].T + self.p["b"], 0)
        if call_id:
            self.pending[call_id] = (x, h)
        return h

    def backward(self, dh, call_id):
        x, h = self.pending.pop(call_id)
        dz = dh * (h > 0)
        self.dense_grad = dz.T @ x
        self.grads = {"w": self.dense_grad * self.mask, "b": dz.sum(0)}

    def step(self, scale):
        self.opt.step({k: scale * g for k, g in self.grads.items()})
        self.steps += 1
        r = self.rigl
        if r and self.steps % r["interval"] == 0 and self.steps < r["end_step"]:
            self._rigl(r["alpha"] / 2 * (1 + math.cos(math.pi * self.steps / r["end_step"])))

    def _rigl(self, fraction):
        mask = self.mask.ravel()
        active = np.flatnonzero(mask)
        inactive = np.flatnonzero(~mask)
        k = min(int(math.floor(fraction * active.size + 0.5)), inactive.size)
        if k <= 0:
            return
        w = self.p["w"].ravel()
        drop = active[np.argsort(np.abs(w[active]), kind="stable")[:k]]
        g = np.abs(self.dense_grad.ravel()[inactive])
        grow = inactive[np.argsort(-g, kind="stable")[:k]]
        mask[drop] = False
        mask[grow] = True
        w[drop] = 0
        w[grow] = 0
        for state in (self.opt.m["w"].ravel(), self.opt.v["w"].ravel()):
            state[drop] = 0
            state[grow] = 0
        self.dropped += k
        self.grown += k


class DaemonHidden:
    """64→256 + ReLU held in sparsed: forward / backward / step through RPCs."""

    def __init__(self, client, name, seed, lr, sparsity, init, rigl=None):
        self.c = client
        self.layer = client.create_layer(
            IN, HIDDEN, sparsity=sparsity, name=name, init=init, bias=True, relu=True,
            seed=seed, optimizer={"kind": "adam", "lr": lr}, rigl=rigl)
        self.dropped = self.grown = 0

    def forward(self, x, call_id=""):
        return self.c.layer_forward(self.layer, x, call_id=call_id)

    def backward(self, dh, call_id):
        self.c.layer_backward(self.layer, dh.astype(np.float32), call_id)

    def step(self, scale):
        r = self.c.layer_step(self.layer, grad_scale=scale)
        self.dropped += r.dropped
        self.grown += r.grown

    def close(self):
        self.c.delete_layer(self.layer)


def train(hidden, out, data, epochs, batch, seed):
    """Minibatch training; returns the test accuracy in percent."""
    x_train, y_train, x_test, y_test = data
    rng = np.random.default_rng(seed)
    n = len(x_train)
    for epoch in range(epochs):
        order = rng.permutation(n)
        for i, start in enumerate(range(0, n, batch)):
            idx = order[start:start + batch]
            x, y = x_train[idx], y_train[idx]
            call_id = "e%d-b%d" % (epoch, i)
            h = hidden.forward(x, call_id)
            logits = out.forward(h)
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(y)), y] -= 1  # d(summed cross-entropy)/d(logits)
            scale = 1.0 / len(y)
            dh = out.backward_step(h, p, scale)
            hidden.backward(dh, call_id)
            hidden.step(scale)
    pred = out.forward(hidden.forward(x_test)).argmax(1)
    return 100.0 * float((pred == y_test).mean())


def rigl_config(args, steps):
    return {"alpha": args.rigl_alpha, "interval": args.rigl_interval,
            "end_step": int(args.rigl_end * steps)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default=os.environ.get("SPARSED_ADDR", "127.0.0.1:50051"),
                    help="the daemon's gRPC address (default: $SPARSED_ADDR or %(default)s)")
    ap.add_argument("--runs", default="dense,static,rigl",
                    help="comma-separated subset of dense,static,rigl (default: all)")
    ap.add_argument("--emulate", action="store_true",
                    help="run static and rigl in a NumPy emulation, no daemon")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
    ap.add_argument("--sparsity", type=float, default=0.9, help="of the first layer")
    ap.add_argument("--init", default="random_pattern", choices=["random_pattern", "dense_prune"])
    ap.add_argument("--rigl-alpha", type=float, default=0.3)
    ap.add_argument("--rigl-interval", type=int, default=25, help="steps between RigL updates")
    ap.add_argument("--rigl-end", type=float, default=0.75,
                    help="RigL stops after this fraction of the training steps")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    data = load_data()
    steps = args.epochs * -(-len(data[0]) // args.batch)
    runs = [r for r in args.runs.split(",") if r]
    unknown = set(runs) - {"dense", "static", "rigl"}
    if unknown:
        ap.error("unknown run(s): %s" % ", ".join(sorted(unknown)))

    client = None
    if not args.emulate and set(runs) - {"dense"}:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import sparsed_client
        client = sparsed_client.Client(args.server)

    for run in runs:
        rigl = rigl_config(args, steps) if run == "rigl" else None
        start = time.perf_counter()
        if run == "dense":
            hidden = NumpyHidden(args.seed, args.lr)
        elif args.emulate:
            hidden = NumpyHidden(args.seed, args.lr, args.sparsity, args.init, rigl)
        else:
            hidden = DaemonHidden(client, "train_digits-%s-%d" % (run, os.getpid()), args.seed,
                                  args.lr, args.sparsity, args.init, rigl)
        out = OutputLayer(args.seed + 1000, args.lr)
        try:
            acc = train(hidden, out, data, args.epochs, args.batch, args.seed)
        finally:
            if isinstance(hidden, DaemonHidden):
                hidden.close()
        elapsed = time.perf_counter() - start
        extra = ", RigL moved %d weights" % hidden.grown if run == "rigl" else ""
        print("%s: test accuracy %.1f%% (%.1f s%s)" % (run, acc, elapsed, extra), flush=True)
    if client is not None:
        client.close()


if __name__ == "__main__":
    main()
