#!/usr/bin/python3
"""Training throughput of the PyTorch reference MAE (tests/reference/mae_torch.py, the port of
facebookresearch/mae used by the parity tests) at the configurations of bench_train.c, for the
side-by-side table of docs/performance.md.

    OPENBLAS_NUM_THREADS=2 bench_torch.py CONFIG [--steps 20] [--warmup 3] [--threads 1]
                                         [--objective mae|supmae] [--num-classes 10] [--cls-hidden 3072]

Each step: forward (loss), backward, AdamW, as main_pretrain.py runs them (no AMP on CPU).
--objective supmae runs the SupMAE reference (tests/reference/supmae_torch.py, enyac-group/supmae)
instead: the same model plus the head (Linear, BatchNorm1d in training mode, ReLU, Linear) on
the mean of the visible tokens, loss rec + cls_loss_ratio * CE(logits / temperature) with the
paper's 0.01 and 10, labels drawn uniformly over --num-classes each step (all labeled), as
main_pretrain_supmae.py / engine_pretrain.py run it; compare with
`bench_train CONFIG --objective supmae --set objective.num_classes=10`.
Reported as bench_train.c reports: median step, forward / backward / optimizer medians, peak RSS,
and a final `RESULT key=value` line (with objective=supmae after config= for SupMAE; the MAE
output is unchanged). Nothing passes or fails."""
import argparse
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import torch  # noqa: E402

from mae_torch import mae_model, make_optimizer  # noqa: E402
import supmae_torch  # noqa: E402

CONFIGS = {  # the same sizes as bench_train.c
    "mnist-tiny": dict(model=dict(img_size=28, patch_size=4, in_chans=1, embed_dim=192, depth=6, num_heads=3,
                                  decoder_embed_dim=128, decoder_depth=2, decoder_num_heads=4), batch=128),
    "pathology-tiny": dict(model=dict(img_size=224, patch_size=16, in_chans=3, embed_dim=192, depth=12,
                                      num_heads=3, decoder_embed_dim=128, decoder_depth=2, decoder_num_heads=4),
                           batch=16),
    "pathology-small": dict(model=dict(img_size=224, patch_size=16, in_chans=3, embed_dim=384, depth=12,
                                       num_heads=6, decoder_embed_dim=256, decoder_depth=4, decoder_num_heads=8),
                            batch=16),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", choices=sorted(CONFIGS))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--objective", choices=("mae", "supmae"), default="mae")
    ap.add_argument("--num-classes", type=int, default=10, help="supmae: classes of the head and the labels "
                    "(bench_train.c's BENCH_CLASSES)")
    ap.add_argument("--cls-hidden", type=int, default=supmae_torch.PAPER_DEFAULTS["cls_hidden"],
                    help="supmae: hidden width of the head, 0 = one Linear")
    ap.add_argument("--cls-loss-ratio", type=float, default=supmae_torch.PAPER_DEFAULTS["cls_loss_ratio"])
    ap.add_argument("--temperature", type=float, default=supmae_torch.PAPER_DEFAULTS["temperature"])
    args = ap.parse_args()
    cfg = CONFIGS[args.config]
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    supmae = args.objective == "supmae"
    if supmae:
        model = supmae_torch.supmae_model(norm_pix_loss=True, cls_hidden=args.cls_hidden,
                                          num_classes=args.num_classes, global_pool=True, **cfg["model"])
    else:
        model = mae_model(norm_pix_loss=True, **cfg["model"])
    opt = make_optimizer(model, lr=1e-4)
    m = cfg["model"]
    images = torch.randn(cfg["batch"], m["in_chans"], m["img_size"], m["img_size"])
    fwd, bwd, optim, step = [], [], [], []
    for s in range(args.warmup + args.steps):
        labels = torch.randint(args.num_classes, (cfg["batch"],)) if supmae else None
        t0 = time.perf_counter()
        if supmae:
            rec_loss, _, _, logits = model(images, mask_ratio=0.75)
            loss, _ = supmae_torch.supmae_loss(rec_loss, logits, labels, args.cls_loss_ratio, args.temperature)
        else:
            loss, _, _ = model(images, mask_ratio=0.75)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if s >= args.warmup:
            fwd.append(t1 - t0), bwd.append(t2 - t1), optim.append(t3 - t2), step.append(t3 - t0)
    med = {k: statistics.median(v) for k, v in dict(forward=fwd, backward=bwd, optimizer=optim, step=step).items()}
    ips = cfg["batch"] / med["step"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    head = (f", objective supmae (head {args.cls_hidden} hidden, {args.num_classes} classes)" if supmae else "")
    print(f"{args.config}{head}: PyTorch {torch.__version__}, torch threads {args.threads}, OpenBLAS threads {blas}, "
          f"batch {cfg['batch']}")
    print(f"  {ips:.1f} images/s (median of {args.steps} steps); per step: "
          + ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in med.items()) + f"; peak RSS {rss:.0f} MiB")
    objective = " objective=supmae" if supmae else ""  # the MAE line stays as it was
    print(f"RESULT config={args.config}{objective} torch_threads={args.threads} openblas_threads={blas} "
          f"images_per_s={ips:.2f} "
          f"forward_ms={1e3 * med['forward']:.2f} backward_ms={1e3 * med['backward']:.2f} "
          f"optimizer_ms={1e3 * med['optimizer']:.2f} rss_mib={rss:.0f}")


if __name__ == "__main__":
    main()
