#!/usr/bin/python3
"""Writes what bench/train_digits.cc (train_digits_bench) needs to repeat
client/python/train_digits.py exactly, as .npy files in DIR:

    x_train.npy [1437, 64] f32, y_train.npy [1437] i64
    x_test.npy  [360, 64]  f32, y_test.npy  [360]  i64     load_data()'s split
    out_w.npy   [10, 256]  f32   the output layer's initial weights (seed + 1000)
    dense_w.npy [256, 64]  f32   the dense baseline's first layer (seed)
    dense_b.npy [256]      f32   and its bias
    order.npy   [epochs, 1437] i64   each epoch's batch order (seed)
    config.npy  [2]        i64   seed, epochs

Every array comes from train_digits.py's own code and seeds, so both
programs start from the same weights and see the same batches. The sparse
layer's weights are drawn by the daemon from the same seed in both.

    /usr/bin/python3 scripts/export_digits.py /tmp/digits
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "client",
                                "python"))
import train_digits  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="output directory (created if missing)")
    ap.add_argument("--seed", type=int, default=1, help="train_digits.py's --seed")
    ap.add_argument("--epochs", type=int, default=20, help="train_digits.py's --epochs")
    args = ap.parse_args()

    x_train, y_train, x_test, y_test = train_digits.load_data()
    # The learning rate does not affect the initial weights.
    out = train_digits.OutputLayer(args.seed + 1000, 3e-3)
    dense = train_digits.NumpyHidden(args.seed, 3e-3)
    # train() draws one permutation per epoch from default_rng(seed).
    rng = np.random.default_rng(args.seed)
    order = np.stack([rng.permutation(len(x_train)) for _ in range(args.epochs)])

    os.makedirs(args.dir, exist_ok=True)
    arrays = {
        "x_train": x_train.astype(np.float32), "y_train": y_train.astype(np.int64),
        "x_test": x_test.astype(np.float32), "y_test": y_test.astype(np.int64),
        "out_w": out.p["w"].astype(np.float32),
        "dense_w": dense.p["w"].astype(np.float32), "dense_b": dense.p["b"].astype(np.float32),
        "order": order.astype(np.int64),
        "config": np.array([args.seed, args.epochs], np.int64),
    }
    for name, a in arrays.items():
        np.save(os.path.join(args.dir, name + ".npy"), np.ascontiguousarray(a))
    print("wrote %d arrays to %s (seed %d, %d epochs, %d train / %d test)" %
          (len(arrays), args.dir, args.seed, args.epochs, len(x_train), len(x_test)))


if __name__ == "__main__":
    main()
