#!/usr/bin/python3
"""Write the parity fixtures that maec's C model is checked against (docs/parity.md).

Each fixture is the float64 PyTorch reference (tests/reference/mae_torch.py, or for SupMAE
tests/reference/supmae_torch.py) on a small config: inputs, masks, initial parameters, encoder
output, prediction, loss, every gradient, and 5 AdamW steps on the same batch and masks.
Deterministic: the same arrays every run.

Format version 1 is the MAE fixture. Version 2 adds an objective other than MAE: the root
attribute `objective`, the group /objective (the objective's config keys, named as under
`objective:` in a maec job file), the batch's `labels`, the loss terms under /terms, further
outputs under /outputs, and the non-trainable state (BatchNorm running statistics) under /state
(before step 0) and /state_after (after the last step), kept out of /params. MAE fixtures are
still written as version 1, so the committed files do not change.

    /usr/bin/python3 tests/parity/gen_fixtures.py            # all, into tests/parity/fixtures
    /usr/bin/python3 tests/parity/gen_fixtures.py --out DIR NAME ...
"""

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reference"))
import mae_torch  # noqa: E402
import supmae_torch  # noqa: E402

FORMAT = "maec-parity-fixture"
VERSION = 2       # the newest format written; an MAE fixture (no "objective" entry) is version 1
MAE_VERSION = 1
FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures"

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)

# Five steps with warmup_steps 2 and total_steps 8: lr 0 at step 0, half the peak at step 1,
# the peak at step 2, then three points on the cosine. AdamW with lr 0 still advances its
# step count and moments, so step 0 is part of what is checked.
OPTIM = dict(lr=1e-2, min_lr=1e-4, weight_decay=0.05, beta1=0.9, beta2=0.95, eps=1e-8,
             warmup_steps=2, total_steps=8, steps=5)

FIXTURES = {
    "normpix_odd_heads": dict(
        description="norm_pix_loss on; 3 encoder heads (head_dim 8); decoder (3 blocks) deeper "
                    "than the encoder (2); RGB 16 px, patch 4; mask 0.75; one low-contrast "
                    "corner so the norm_pix eps and unbiased variance matter",
        config=dict(img_size=16, patch_size=4, in_chans=3, embed_dim=24, depth=2, num_heads=3,
                    decoder_embed_dim=16, decoder_depth=3, decoder_num_heads=2, mlp_ratio=4.0,
                    norm_pix_loss=True),
        mask_ratio=0.75, batch=4, seed=101, images="rgb_low_contrast"),
    "mnist_gray": dict(
        description="norm_pix_loss off; single channel, MNIST-like 28 px strokes with exact-zero "
                    "background, patch 4 (7x7 grid, odd); mask 0.75 keeps int(12.25) = 12",
        config=dict(img_size=28, patch_size=4, in_chans=1, embed_dim=32, depth=2, num_heads=4,
                    decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2, mlp_ratio=4.0,
                    norm_pix_loss=False),
        mask_ratio=0.75, batch=3, seed=202, images="gray_strokes"),
    "mask60_rgb": dict(
        description="mask 0.6 keeps int(14.4) = 14 of 36; RGB 24 px, patch 4; encoder head_dim "
                    "16, decoder 4 heads of head_dim 6; mlp_ratio 3; norm_pix_loss on",
        config=dict(img_size=24, patch_size=4, in_chans=3, embed_dim=32, depth=2, num_heads=2,
                    decoder_embed_dim=24, decoder_depth=2, decoder_num_heads=4, mlp_ratio=3.0,
                    norm_pix_loss=True),
        mask_ratio=0.6, batch=4, seed=303, images="rgb"),
    "supmae_labels": dict(
        description="SupMAE: classifier on the mean of the visible patch tokens after the encoder "
                    "norm (CLS excluded), Linear 24->12, BatchNorm1d in training mode, ReLU, Linear "
                    "12->5; loss rec + 0.5 * CE(logits / 10) over the labeled; labels [2,0,-1,4,1,2]; "
                    "norm_pix, mask 0.75; cls_loss_ratio 0.5, not the paper's "
                    "0.01, so that a mistake in the head's backward into the encoder breaks the "
                    "gradient tolerance (a detached pooled feature: 0.9 relative, 0.02 at "
                    "0.01); cls_head.0.bias has an exactly zero gradient",
        config=dict(img_size=16, patch_size=4, in_chans=3, embed_dim=24, depth=2, num_heads=3,
                    decoder_embed_dim=16, decoder_depth=2, decoder_num_heads=2, mlp_ratio=4.0,
                    norm_pix_loss=True),
        objective=dict(name="supmae", cls_loss_ratio=0.5, temperature=10.0, cls_hidden=12,
                       num_classes=5, global_pool=True),
        labels=[2, 0, -1, 4, 1, 2],
        mask_ratio=0.75, batch=6, seed=404, images="rgb"),
}

# /objective attributes per objective: name -> type, in maec's job-file names
OBJECTIVE_KEYS = {"supmae": dict(cls_loss_ratio=np.float64, temperature=np.float64, cls_hidden=np.int64,
                                 num_classes=np.int64, global_pool=np.int64)}


def build_model(spec):
    """The reference model of a fixture entry (float32, as the reference initialises it)."""
    cfg, obj = spec["config"], spec.get("objective")
    if obj is None:
        return mae_torch.mae_model(**cfg)
    assert obj["name"] == "supmae", obj
    return supmae_torch.supmae_model(**cfg, cls_hidden=obj["cls_hidden"], num_classes=obj["num_classes"],
                                     global_pool=obj["global_pool"])


def smooth_field(rng, size, waves=4):
    """A few random plane waves: smooth structure in [-1, 1]-ish."""
    y, x = np.meshgrid(np.arange(size) / size, np.arange(size) / size, indexing="ij")
    f = np.zeros((size, size))
    for _ in range(waves):
        fy, fx = rng.uniform(-2.5, 2.5, size=2)
        f += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * (fy * y + fx * x) + rng.uniform(0, 2 * np.pi))
    return f / waves


def make_images(kind, n, c, size, rng):
    """Pixel images in [0, 1], normalised per channel as a data loader would, then rounded to
    float32: the reference sees float32 inputs, and a float32 C model gets them exactly."""
    pix = np.empty((n, c, size, size))
    if kind == "gray_strokes":
        y, x = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        for i in range(n):
            img = np.zeros((size, size))
            for _ in range(3):  # thick strokes along random segments
                (y0, x0), (y1, x1) = rng.uniform(5, size - 5, size=(2, 2))
                t = np.clip(((y - y0) * (y1 - y0) + (x - x0) * (x1 - x0))
                            / ((y1 - y0) ** 2 + (x1 - x0) ** 2 + 1e-9), 0, 1)
                d2 = (y - y0 - t * (y1 - y0)) ** 2 + (x - x0 - t * (x1 - x0)) ** 2
                img = np.maximum(img, np.exp(-d2 / 3.0))
            img += 0.05 * rng.standard_normal((size, size))
            pix[i, 0] = np.clip(1.3 * img - 0.2, 0, 1)  # background exactly 0
        mean, std = MNIST_MEAN, MNIST_STD
    else:
        for i in range(n):
            base = smooth_field(rng, size)
            for ch in range(c):
                pix[i, ch] = 0.5 + 0.3 * base + 0.1 * smooth_field(rng, size) \
                    + 0.05 * rng.standard_normal((size, size))
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if kind == "rgb_low_contrast":
            # A nearly flat 8x8 corner (4 patches of 4x4x3) in sample 0, flat in normalised
            # units (the same value in every channel after normalisation): patch variance
            # ~1e-5, where eps = 1e-6 inside or outside the sqrt changes the target by ~5%.
            for ch in range(c):
                pix[0, ch, :8, :8] = mean[ch] + std[ch] * (0.5 + 0.003 * rng.standard_normal((8, 8)))
        pix = np.clip(pix, 0, 1)
    imgs = (pix - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    return imgs.astype(np.float32).astype(np.float64)


def make_ids_shuffle(n, num_patches, rng):
    """Per-sample argsort of uniform noise, as random_masking draws it."""
    return np.argsort(rng.random((n, num_patches)), axis=1, kind="stable").astype(np.int64)


def compute(name):
    """Run the float64 reference for one fixture; returns (attrs by group, datasets by path)."""
    if FIXTURES[name].get("objective") is not None:
        return compute_objective(name)
    spec = FIXTURES[name]
    cfg, opt_cfg = spec["config"], OPTIM
    torch.set_num_threads(1)  # one reduction order, so the arrays repeat bit for bit

    rng = np.random.default_rng(spec["seed"])
    num_patches = (cfg["img_size"] // cfg["patch_size"]) ** 2
    imgs_np = make_images(spec["images"], spec["batch"], cfg["in_chans"], cfg["img_size"], rng)
    ids_np = make_ids_shuffle(spec["batch"], num_patches, rng)

    # The reference initialises in float32; the fixture's weights are those values, so every
    # stored parameter is float32-representable, like the images.
    torch.manual_seed(spec["seed"])
    model = build_model(spec).double()
    imgs = torch.from_numpy(imgs_np)
    ids_shuffle = torch.from_numpy(ids_np)
    params0 = {k: v.detach().clone() for k, v in model.state_dict().items()}

    optimizer = mae_torch.make_optimizer(model, lr=opt_cfg["lr"], weight_decay=opt_cfg["weight_decay"],
                                         betas=(opt_cfg["beta1"], opt_cfg["beta2"]), eps=opt_cfg["eps"])
    lrs, losses = [], []
    for step in range(opt_cfg["steps"]):
        lr = mae_torch.lr_at_step(step, opt_cfg["lr"], opt_cfg["min_lr"],
                                  opt_cfg["warmup_steps"], opt_cfg["total_steps"])
        mae_torch.set_lr(optimizer, lr)
        optimizer.zero_grad(set_to_none=True)
        latent, mask, ids_restore = model.forward_encoder(imgs, spec["mask_ratio"], ids_shuffle)
        pred = model.forward_decoder(latent, ids_restore)
        loss = model.forward_loss(imgs, pred, mask)
        loss.backward()
        if step == 0:
            first = dict(latent=latent.detach().clone(), pred=pred.detach().clone(),
                         loss=loss.detach().clone(), mask=mask.detach().clone(),
                         ids_restore=ids_restore.clone(),
                         grads={n: p.grad.detach().clone()
                                for n, p in model.named_parameters() if p.requires_grad})
        optimizer.step()
        lrs.append(lr)
        losses.append(loss.item())

    data = {"images": imgs_np, "ids_shuffle": ids_np,
            "ids_restore": first["ids_restore"].numpy(), "mask": first["mask"].numpy(),
            "latent": first["latent"].numpy(), "pred": first["pred"].numpy(),
            "loss": first["loss"].numpy(),
            "lr": np.array(lrs, dtype=np.float64), "losses": np.array(losses, dtype=np.float64)}
    for n, v in params0.items():
        data["params/" + n] = v.numpy()
    for n, g in first["grads"].items():
        data["grads/" + n] = g.numpy()
    for n, p in model.named_parameters():
        if p.requires_grad:
            data["params_after/" + n] = p.detach().numpy().copy()

    attrs = {
        "/": dict(format=FORMAT, version=np.int64(MAE_VERSION), description=f"{name}: {spec['description']}",
                  generator=f"tests/parity/gen_fixtures.py (torch {torch.__version__}, "
                            f"numpy {np.__version__})"),
        "/config": {**{k: np.int64(v) for k, v in cfg.items() if k not in ("mlp_ratio", "norm_pix_loss")},
                    "mlp_ratio": np.float64(cfg["mlp_ratio"]),
                    "norm_pix_loss": np.int64(cfg["norm_pix_loss"]),
                    "mask_ratio": np.float64(spec["mask_ratio"]),
                    "batch": np.int64(spec["batch"])},
        "/optim": {k: (np.int64(v) if k in ("warmup_steps", "total_steps", "steps") else np.float64(v))
                   for k, v in opt_cfg.items()},
    }
    return attrs, data


def compute_objective(name):
    """compute() for a version-2 fixture (SupMAE): the same steps plus labels, terms, logits and
    the BatchNorm state. Datasets are written in the order of the returned dict."""
    spec = FIXTURES[name]
    cfg, opt_cfg, obj = spec["config"], OPTIM, spec["objective"]
    torch.set_num_threads(1)

    rng = np.random.default_rng(spec["seed"])
    num_patches = (cfg["img_size"] // cfg["patch_size"]) ** 2
    imgs_np = make_images(spec["images"], spec["batch"], cfg["in_chans"], cfg["img_size"], rng)
    ids_np = make_ids_shuffle(spec["batch"], num_patches, rng)
    labels_np = np.array(spec["labels"], dtype=np.int64)
    assert labels_np.shape == (spec["batch"],) and labels_np.min() >= -1 and labels_np.max() < obj["num_classes"]

    torch.manual_seed(spec["seed"])
    model = build_model(spec).double()  # float32 init, then double; training mode (BN: batch stats)
    assert model.training
    supmae_torch.zero_pre_bn_bias_grad(model)  # its true gradient is 0: the BN removes the shift
    imgs, ids_shuffle, labels = torch.from_numpy(imgs_np), torch.from_numpy(ids_np), torch.from_numpy(labels_np)
    buffers = set(supmae_torch.buffer_names(model))
    params0 = {k: v.detach().clone() for k, v in model.state_dict().items() if k not in buffers}
    state0 = {k: v.detach().clone() for k, v in model.named_buffers()}

    optimizer = mae_torch.make_optimizer(model, lr=opt_cfg["lr"], weight_decay=opt_cfg["weight_decay"],
                                         betas=(opt_cfg["beta1"], opt_cfg["beta2"]), eps=opt_cfg["eps"])
    lrs, losses = [], []
    for step in range(opt_cfg["steps"]):
        lr = mae_torch.lr_at_step(step, opt_cfg["lr"], opt_cfg["min_lr"],
                                  opt_cfg["warmup_steps"], opt_cfg["total_steps"])
        mae_torch.set_lr(optimizer, lr)
        optimizer.zero_grad(set_to_none=True)
        # models_supmae.forward's order: encoder, decoder, classifier (updates the BN's running
        # statistics), reconstruction loss; then engine_pretrain's combination
        latent, mask, ids_restore = model.forward_encoder(imgs, spec["mask_ratio"], ids_shuffle)
        pred = model.forward_decoder(latent, ids_restore)
        logits = model.forward_classification(latent)
        rec_loss = model.forward_loss(imgs, pred, mask)
        loss, cls_loss = supmae_torch.supmae_loss(rec_loss, logits, labels, obj["cls_loss_ratio"],
                                                  obj["temperature"])
        loss.backward()
        if step == 0:
            first = dict(latent=latent.detach().clone(), pred=pred.detach().clone(),
                         logits=logits.detach().clone(), loss=loss.detach().clone(),
                         rec_loss=rec_loss.detach().clone(), cls_loss=cls_loss.detach().clone(),
                         mask=mask.detach().clone(), ids_restore=ids_restore.clone(),
                         grads={n: p.grad.detach().clone()
                                for n, p in model.named_parameters() if p.requires_grad})
        optimizer.step()
        lrs.append(lr)
        losses.append(loss.item())

    data = {"images": imgs_np, "ids_shuffle": ids_np, "labels": labels_np,
            "ids_restore": first["ids_restore"].numpy(), "mask": first["mask"].numpy(),
            "latent": first["latent"].numpy(), "pred": first["pred"].numpy(),
            "outputs/logits": first["logits"].numpy(),
            "loss": first["loss"].numpy(),
            "terms/rec_loss": first["rec_loss"].numpy(), "terms/cls_loss": first["cls_loss"].numpy(),
            "lr": np.array(lrs, dtype=np.float64), "losses": np.array(losses, dtype=np.float64)}
    for n, v in params0.items():
        data["params/" + n] = v.numpy()
    for n, v in state0.items():
        data["state/" + n] = v.numpy()
    for n, g in first["grads"].items():
        data["grads/" + n] = g.numpy()
    for n, p in model.named_parameters():
        if p.requires_grad:
            data["params_after/" + n] = p.detach().numpy().copy()
    for n, v in model.named_buffers():
        data["state_after/" + n] = v.detach().numpy().copy()

    attrs = {
        "/": dict(format=FORMAT, version=np.int64(VERSION), objective=obj["name"],
                  description=f"{name}: {spec['description']}",
                  generator=f"tests/parity/gen_fixtures.py (torch {torch.__version__}, "
                            f"numpy {np.__version__})"),
        "/config": {**{k: np.int64(v) for k, v in cfg.items() if k not in ("mlp_ratio", "norm_pix_loss")},
                    "mlp_ratio": np.float64(cfg["mlp_ratio"]),
                    "norm_pix_loss": np.int64(cfg["norm_pix_loss"]),
                    "mask_ratio": np.float64(spec["mask_ratio"]),
                    "batch": np.int64(spec["batch"])},
        "/objective": {k: t(obj[k]) for k, t in OBJECTIVE_KEYS[obj["name"]].items()},
        "/optim": {k: (np.int64(v) if k in ("warmup_steps", "total_steps", "steps") else np.float64(v))
                   for k, v in opt_cfg.items()},
    }
    return attrs, data


def write(path, attrs, data):
    """Plain contiguous little-endian datasets (no filters); strings are fixed-length ASCII."""
    tmp = Path(str(path) + ".tmp")
    with h5py.File(tmp, "w", libver="earliest", track_order=False) as f:
        for group, group_attrs in attrs.items():
            g = f.require_group(group)
            for k, v in group_attrs.items():
                g.attrs[k] = np.bytes_(v.encode("ascii")) if isinstance(v, str) else v
        for k, v in data.items():
            dtype = "<i8" if v.dtype.kind == "i" else "<f8"
            f.create_dataset(k, data=np.asarray(v, dtype=dtype), track_times=False)  # keeps 0-d scalar
    tmp.replace(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"fixtures to write (default: all of {', '.join(FIXTURES)})")
    ap.add_argument("--out", type=Path, default=FIXTURE_DIR, help="output folder (default: %(default)s)")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in FIXTURES]
    if unknown:
        ap.error(f"unknown fixture {', '.join(unknown)}; known: {', '.join(FIXTURES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names or FIXTURES:
        attrs, data = compute(name)
        path = args.out / f"{name}.h5"
        write(path, attrs, data)
        print(f"{path}: loss {float(data['loss']):.6f}, losses {np.array2string(data['losses'], precision=5)}, "
              f"{path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
