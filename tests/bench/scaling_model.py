#!/usr/bin/python3
"""Step-time model of data-parallel MAE pretraining on N ranks (docs/scaling.md).

    scaling_model.py --gflops R [--adamw-ns O] [--alpha-us A] [--busbw-gbs W] [--bucket-mib 4]
                     [--overlap 0|1]

Per rank and step, with b images per rank and P parameters:
    compute = b * F / R                      F: training FLOP per image (fwd + bwd = 3 x fwd)
    adamw   = P * O                          every rank updates every parameter
    comm    = buckets * 2 (N - 1) * alpha + 2 (N - 1) / N * 4 P / W        (ring all-reduce)
    step    = compute + adamw + comm         today: the all-reduce starts after backward
    step    = compute + adamw + max(0, comm - 2/3 compute)   with overlap under backward
    efficiency = step(1 rank) / step(N)      weak scaling (same images per rank)
               = step(1 rank, whole batch) / (N step(N))      strong scaling
R is the sustained GFLOP/s of one rank (bench_train's GFLOP/s), O AdamW's seconds per parameter
(bench_train's optimizer time over its parameters), alpha and W the latency and bus bandwidth
of the interconnect (bench_comm). Prints the predicted efficiency at 8, 64 and 512
ranks for ViT-S and ViT-B, weak scaling (16 images per rank) and strong scaling (global batch
4096, the MAE paper's). A model, not a measurement: docs/scaling.md checks it against 1, 2 and 4
ranks measured on one machine."""
import argparse

MASK_KEEP, PATCHES, PATCH_DIM = 49, 196, 768  # 224 px, patch 16, 3 channels, mask 0.75

MODELS = {  # encoder dim x depth, decoder dim x depth (MAE's 512 x 8 decoder)
    "ViT-S": (384, 12, 512, 8),
    "ViT-B": (768, 12, 512, 8),
}


def block_macs(tokens, dim):
    """qkv + proj + MLP (4x) products, and the two attention products, per block."""
    return 12 * tokens * dim * dim + 2 * tokens * tokens * dim


def train_flop_per_image(enc, depth, dec, dec_depth):
    te, td = 1 + MASK_KEEP, 1 + PATCHES
    macs = (depth * block_macs(te, enc) + dec_depth * block_macs(td, dec) + MASK_KEEP * PATCH_DIM * enc
            + te * enc * dec + td * dec * PATCH_DIM)
    return 2 * 3 * macs


def parameters(enc, depth, dec, dec_depth):
    return (depth * (12 * enc * enc + 13 * enc) + dec_depth * (12 * dec * dec + 13 * dec) + PATCH_DIM * enc
            + enc * dec + dec * PATCH_DIM)


def step_seconds(ranks, per_rank, flop, params, a):
    compute = per_rank * flop / (a.gflops * 1e9)
    adamw = params * a.adamw_ns * 1e-9
    grad_bytes = 4.0 * params
    buckets = -(-grad_bytes // (a.bucket_mib * 2**20))
    comm = 0.0
    if ranks > 1:
        comm = buckets * 2 * (ranks - 1) * a.alpha_us * 1e-6 + 2 * (ranks - 1) / ranks * grad_bytes / (a.busbw_gbs * 1e9)
    exposed = max(0.0, comm - 2.0 / 3.0 * compute) if a.overlap else comm
    return compute, comm, compute + adamw + exposed


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gflops", type=float, required=True, help="sustained GFLOP/s of one rank")
    p.add_argument("--adamw-ns", type=float, default=2.0, help="AdamW nanoseconds per parameter")
    p.add_argument("--alpha-us", type=float, default=2.0, help="per-message latency, microseconds")
    p.add_argument("--busbw-gbs", type=float, default=10.0, help="all-reduce bus bandwidth, GB/s")
    p.add_argument("--bucket-mib", type=float, default=4.0, help="gradient bucket (dist.bucket_mb)")
    p.add_argument("--overlap", type=int, default=0, help="1: communication hidden under backward")
    a = p.parse_args()
    print(f"rank {a.gflops:g} GFLOP/s, alpha {a.alpha_us:g} us, bus bandwidth {a.busbw_gbs:g} GB/s, "
          f"bucket {a.bucket_mib:g} MiB, overlap {'yes' if a.overlap else 'no'}")
    print("| model | params | GFLOP/img | scaling | ranks | img/rank | compute s | all-reduce s | efficiency |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, shape in MODELS.items():
        flop, params = train_flop_per_image(*shape), parameters(*shape)
        for scaling in ("weak", "strong"):
            for ranks in (8, 64, 512):
                per_rank = 16 if scaling == "weak" else 4096 / ranks
                compute, comm, step = step_seconds(ranks, per_rank, flop, params, a)
                one_rank = step_seconds(1, per_rank * (1 if scaling == "weak" else ranks), flop, params, a)[2]
                ideal = one_rank if scaling == "weak" else one_rank / ranks
                print(f"| {name} | {params / 1e6:.1f} M | {flop / 1e9:.1f} | {scaling} | {ranks} | {per_rank:g} "
                      f"| {compute:.2f} | {comm:.3f} | {100 * ideal / step:.1f}% |")


if __name__ == "__main__":
    main()
