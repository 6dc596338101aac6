"""Writes a maec feature file (docs/formats.md, "Features") of Gaussian clusters for the eval tests.

  make_features.py OUT.h5 --count N [--dim D] [--classes a,b,c] [--spread S] [--seed S]
                   [--random-labels] [--unlabeled F] [--pooling cls|mean] [--no-labels] [--format NAME]
                   [--checkpoint PATH]

Centres are N(0, spread^2) per dimension (the same for every file with the same --seed and
--dim), samples add unit noise; --random-labels draws labels independently of the features;
--unlabeled F sets a fraction F of the labels to -1 (1 = all of them).
"""
import argparse

import h5py
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--count", type=int, required=True)
p.add_argument("--dim", type=int, default=16)
p.add_argument("--classes", default="tumour,stroma,lymphocytes,mucus")
p.add_argument("--spread", type=float, default=1.0)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--sample-seed", type=int, default=1)
p.add_argument("--random-labels", action="store_true")
p.add_argument("--unlabeled", type=float, default=0.0)
p.add_argument("--pooling", default="cls")
p.add_argument("--no-labels", action="store_true")
p.add_argument("--format", default="maec-features")
p.add_argument("--checkpoint", default="synthetic")
a = p.parse_args()

names = a.classes.split(",")
centres = np.random.default_rng(a.seed).normal(scale=a.spread, size=(len(names), a.dim))
rng = np.random.default_rng(a.sample_seed)
y = rng.integers(0, len(names), a.count)
x = centres[y] + rng.normal(size=(a.count, a.dim))
if a.random_labels:
    y = rng.integers(0, len(names), a.count)
y[rng.random(a.count) < a.unlabeled] = -1
with h5py.File(a.out, "w") as f:
    f["features"] = x.astype(np.float32)
    if not a.no_labels:
        f["labels"] = y.astype(np.int32)
    f.attrs["format"] = a.format
    f.attrs["format_version"] = np.int32(1)
    f.attrs["num_classes"] = np.int32(len(names))
    f.attrs["class_names"] = names
    f.attrs["pooling"] = a.pooling
    f.attrs["source_checkpoint"] = a.checkpoint
    f.attrs["source_dataset"] = "make_features.py"
