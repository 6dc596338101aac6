#!/usr/bin/env python3
"""Compares the tensors of two maec checkpoints (docs/formats.md): /model, /optim/{m,v} and /state.

Prints the relative error ||a - b|| / ||b|| per group (the worst tensor) and fails when one is
above --rtol, or, with --exact, when any value differs in any bit."""
import argparse
import sys

import h5py
import numpy as np


def tensors(f, group):
    out = {}
    if group not in f:
        return out  # /state of a version 1 file
    f[group].visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--exact", action="store_true", help="require bit-identical tensors")
    args = ap.parse_args()
    bad = False
    with h5py.File(args.a, "r") as fa, h5py.File(args.b, "r") as fb:
        for group in ("model", "optim/m", "optim/v", "state"):
            ta, tb = tensors(fa, group), tensors(fb, group)
            if not ta and not tb:
                continue  # an objective without state
            if ta.keys() != tb.keys():
                print(f"{group}: tensor names differ: {sorted(ta.keys() ^ tb.keys())}")
                bad = True
                continue
            worst, worst_name = 0.0, ""
            for name in ta:
                a, b = ta[name].astype(np.float64), tb[name].astype(np.float64)
                if a.shape != b.shape:
                    print(f"{group}/{name}: shapes {a.shape} and {b.shape}")
                    bad = True
                    continue
                if args.exact:
                    err = float(np.count_nonzero(ta[name] != tb[name]))
                else:
                    norm = np.linalg.norm(b)
                    err = np.linalg.norm(a - b) / norm if norm > 0 else np.linalg.norm(a)
                if err > worst or not worst_name:
                    worst, worst_name = err, name
            limit = 0 if args.exact else args.rtol
            verdict = "ok" if worst <= limit else "FAIL"
            what = "values differing" if args.exact else "relative error"
            print(f"{group:8s} worst {what} {worst:.3e} ({worst_name}), limit {limit:g}: {verdict}")
            bad |= worst > limit
        sa, sb = int(fa.attrs["step"]), int(fb.attrs["step"])
        if sa != sb:
            print(f"steps differ: {sa} and {sb}")
            bad = True
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
