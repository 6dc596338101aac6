#!/usr/bin/python3
"""Self-checks of the PyTorch reference and of the committed parity fixtures.

Run: /usr/bin/python3 tests/parity/check_reference.py   (meson test --suite parity)
Prints one line per check and exits 1 if any failed.

What is checked:
  - pos-embed, patchify and masking against direct formulas and the fixtures' own arrays;
  - the fixture loss against a plain loop over masked patches (norm_pix by hand);
  - SupMAE: the logits, the cross-entropy, the total loss and the BatchNorm state of the
    fixture against numpy by hand, and a hand-written BatchNorm against torch's;
  - the ports' autograd gradients against finite differences (gradcheck, float64), MAE and SupMAE;
  - every committed fixture is reproduced by gen_fixtures.py (the format and every array);
  - a float32 replay of every fixture meets the C checker's tolerances (so they can be met),
    including, for version 2, the loss terms, the logits and the state after the steps;
  - each of a list of plausible mistakes breaks a tolerance on some fixture (so they bite):
    MAE mistakes on every fixture, SupMAE mistakes on the SupMAE fixture.
"""

import math
import sys
import time
import traceback
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "reference"))
sys.path.insert(0, str(HERE))
import mae_torch  # noqa: E402
import supmae_torch  # noqa: E402
import gen_fixtures  # noqa: E402

# The C checker's tolerances, ||c - ref|| / ||ref|| per tensor (docs/parity.md; parity_check.c:
# TOL_LOSS also for each /terms entry, TOL_PARAM also for /state_after, TOL_ACTIVATION for the
# named outputs such as /outputs/logits).
LOSS_TOL, GRAD_TOL, AFTER_TOL = 1e-5, 1e-4, 1e-4
STATE_TOL, ACT_TOL = AFTER_TOL, 1e-4
# Regenerating a fixture on another machine may change reduction order, nothing more: float64
# round-off, relative to each array's norm. The largest such change is in the qkv biases after 5
# steps, where AdamW scales the key bias's round-off gradient (about 1e-19) by 1/eps: with
# OpenBLAS's Haswell kernels (OPENBLAS_CORETYPE=Haswell) against its AVX-512 ones, 1.4e-10.
REGEN_TOL = 1e-9

CONFIG_INT_KEYS = ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads",
                   "decoder_embed_dim", "decoder_depth", "decoder_num_heads")
FIXTURE_PATHS = {name: gen_fixtures.FIXTURE_DIR / f"{name}.h5" for name in gen_fixtures.FIXTURES}


# ---------------------------------------------------------------------------------------------
# reading a fixture and replaying it

def load_fixture(path):
    """Everything in a fixture file: attrs per group and arrays by path ('params/x', 'loss')."""
    fx = {"attrs": {}, "data": {}}
    with h5py.File(path, "r") as f:
        for group in ("/", "/config", "/objective", "/optim"):
            if group in f:
                fx["attrs"][group] = {k: (v.decode("ascii") if isinstance(v, bytes) else v)
                                      for k, v in f[group].attrs.items()}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                fx["data"][name] = obj[()]
        f.visititems(visit)
    return fx


def objective_of(fx):
    """'mae' for version 1, else the root attribute `objective`."""
    return fx["attrs"]["/"].get("objective", "mae")


def model_from_fixture(fx, dtype):
    c = fx["attrs"]["/config"]
    kwargs = dict({k: int(c[k]) for k in CONFIG_INT_KEYS},
                  mlp_ratio=float(c["mlp_ratio"]), norm_pix_loss=bool(c["norm_pix_loss"]))
    if objective_of(fx) == "supmae":
        o = fx["attrs"]["/objective"]
        model = supmae_torch.supmae_model(**kwargs, cls_hidden=int(o["cls_hidden"]),
                                          num_classes=int(o["num_classes"]), global_pool=bool(o["global_pool"]))
    else:
        assert objective_of(fx) == "mae", objective_of(fx)
        model = mae_torch.mae_model(**kwargs)
    model = model.to(dtype)
    state = {k.split("/", 1)[1]: torch.from_numpy(np.asarray(v)) for k, v in fx["data"].items()
             if k.startswith(("params/", "state/"))}
    model.load_state_dict(state, strict=True)  # every state_dict name is in /params or /state
    return model


def replay(fx, dtype=torch.float64, edit_model=None, edit_groups=None, lr_fn=None, loss_fn=None,
           zero_pre_bn_bias=True):
    """What the C checker does, in PyTorch: loss and gradients at the fixture's parameters, then
    the fixture's AdamW steps. The edit_* hooks and loss_fn (SupMAE: (rec_loss, logits, labels,
    ratio, temperature) -> (loss, ce)) let checks plant mistakes."""
    c, o = fx["attrs"]["/config"], fx["attrs"]["/optim"]
    model = model_from_fixture(fx, dtype)
    supmae = objective_of(fx) == "supmae"
    if supmae:
        if zero_pre_bn_bias:
            supmae_torch.zero_pre_bn_bias_grad(model)  # as the fixture does (and the C model must)
        labels = torch.from_numpy(fx["data"]["labels"])
        model.fixture_labels = labels  # for planted mistakes that look at the labels
        ob = fx["attrs"]["/objective"]
        loss_fn = loss_fn or supmae_torch.supmae_loss
    if edit_model:
        edit_model(model)
    groups = mae_torch.param_groups_weight_decay(model, float(o["weight_decay"]))
    if edit_groups:
        groups = edit_groups(model, groups)
    opt = torch.optim.AdamW(groups, lr=0., betas=(float(o["beta1"]), float(o["beta2"])), eps=float(o["eps"]))
    lr_fn = lr_fn or mae_torch.lr_at_step
    imgs = torch.from_numpy(fx["data"]["images"]).to(dtype)
    ids_shuffle = torch.from_numpy(fx["data"]["ids_shuffle"])
    out = {"losses": []}
    for step in range(int(o["steps"])):
        mae_torch.set_lr(opt, lr_fn(step, float(o["lr"]), float(o["min_lr"]),
                                    int(o["warmup_steps"]), int(o["total_steps"])))
        opt.zero_grad(set_to_none=True)
        if supmae:
            rec_loss, pred, _, logits = model(imgs, float(c["mask_ratio"]), ids_shuffle)
            loss, ce = loss_fn(rec_loss, logits, labels, float(ob["cls_loss_ratio"]), float(ob["temperature"]))
        else:
            loss, pred, _ = model(imgs, float(c["mask_ratio"]), ids_shuffle)
        loss.backward()
        if step == 0:
            out["loss"] = loss.item()
            out["grads"] = {n: p.grad.double().numpy().copy() for n, p in model.named_parameters()
                            if p.requires_grad}
            if supmae:
                out["terms"] = {"rec_loss": rec_loss.item(), "cls_loss": ce.item()}
                out["outputs"] = {"logits": logits.detach().double().numpy().copy()}
        out["losses"].append(loss.item())
        opt.step()
    out["params_after"] = {n: p.detach().double().numpy().copy() for n, p in model.named_parameters()
                           if p.requires_grad}
    if supmae:
        out["state_after"] = {n: b.detach().double().numpy().copy() for n, b in model.named_buffers()}
    return out


def rel_err(a, ref):
    """As parity_check.c's test_rel_error: against an all-zero reference only zero passes."""
    den = float(np.linalg.norm(np.asarray(ref, dtype=np.float64)))
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - ref)) / (den if den > 1e-150 else 1e-150)


def _worst(errs):
    name = max(errs, key=errs.get)
    return errs[name], name


def errors(fx, out):
    """Worst relative error per checked quantity, with the tensor it occurred in."""
    d = fx["data"]
    e = {"loss": abs(out["loss"] - float(d["loss"])) / abs(float(d["loss"])),
         "grads": _worst({n: rel_err(g, d["grads/" + n]) for n, g in out["grads"].items()}),
         "after": _worst({n: rel_err(p, d["params_after/" + n]) for n, p in out["params_after"].items()})}
    if "terms" in out:
        e["terms"] = _worst({n: abs(v - float(d["terms/" + n])) / max(abs(float(d["terms/" + n])), 1e-30)
                             for n, v in out["terms"].items()})
        e["outputs"] = _worst({n: rel_err(v, d["outputs/" + n]) for n, v in out["outputs"].items()})
        e["state"] = _worst({n: rel_err(v, d["state_after/" + n]) for n, v in out["state_after"].items()})
    return e


def breaks_tolerance(e):
    return e["loss"] > LOSS_TOL or e["grads"][0] > GRAD_TOL or e["after"][0] > AFTER_TOL or \
        ("terms" in e and (e["terms"][0] > LOSS_TOL or e["outputs"][0] > ACT_TOL or e["state"][0] > STATE_TOL))


def severity(e):
    """The largest error as a multiple of its tolerance."""
    r = [e["loss"] / LOSS_TOL, e["grads"][0] / GRAD_TOL, e["after"][0] / AFTER_TOL]
    if "terms" in e:
        r += [e["terms"][0] / LOSS_TOL, e["outputs"][0] / ACT_TOL, e["state"][0] / STATE_TOL]
    return max(r)


def fmt(e):
    s = (f"loss {e['loss']:.1e}, grads {e['grads'][0]:.1e} ({e['grads'][1]}), "
         f"after {e['after'][0]:.1e} ({e['after'][1]})")
    if "terms" in e:
        s += (f", terms {e['terms'][0]:.1e} ({e['terms'][1]}), outputs {e['outputs'][0]:.1e} "
              f"({e['outputs'][1]}), state_after {e['state'][0]:.1e} ({e['state'][1]})")
    return s


# ---------------------------------------------------------------------------------------------
# checks

def check_pos_embed():
    for dim, grid in ((24, 4), (16, 7), (32, 6), (768, 14)):
        table = mae_torch.get_2d_sincos_pos_embed(dim, grid, cls_token=True)
        assert table.dtype == np.float64 and table.shape == (1 + grid * grid, dim)
        assert not table[0].any(), "cls row must be zero"
        q = dim // 4  # frequencies per (axis, sin|cos)
        omega = [10000.0 ** (-k / q) for k in range(q)]
        direct = np.zeros_like(table)
        for i in range(grid):          # row
            for j in range(grid):      # column
                n = 1 + i * grid + j
                direct[n] = ([math.sin(j * w) for w in omega] + [math.cos(j * w) for w in omega]
                             + [math.sin(i * w) for w in omega] + [math.cos(i * w) for w in omega])
        assert np.abs(table - direct).max() <= 1e-12, np.abs(table - direct).max()
    # the module stores the float64 table rounded to its dtype, as the reference does
    model = mae_torch.mae_model(img_size=16, patch_size=4, embed_dim=24, depth=1, num_heads=3,
                                decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2)
    table = torch.from_numpy(mae_torch.get_2d_sincos_pos_embed(24, 4, cls_token=True)).float()
    assert torch.equal(model.pos_embed[0], table)
    assert not model.pos_embed.requires_grad and not model.decoder_pos_embed.requires_grad


def check_patchify():
    for c, size, p in ((3, 12, 4), (1, 28, 7), (2, 8, 2)):
        model = mae_torch.mae_model(img_size=size, patch_size=p, in_chans=c, embed_dim=8, depth=1,
                                    num_heads=2, decoder_embed_dim=8, decoder_depth=1, decoder_num_heads=2)
        imgs = torch.randn(2, c, size, size, dtype=torch.float64)
        x = model.patchify(imgs)
        h = size // p
        assert x.shape == (2, h * h, p * p * c)
        for n, l, pi, qi, ch in ((0, 0, 0, 0, 0), (1, h * h - 1, p - 1, p - 1, c - 1),
                                 (1, h + 1, 1, p - 1, c // 2), (0, h - 1, p - 1, 0, 0)):
            # patch l = row-major over the grid; inside it (row pi, column qi, channel ch)
            hi, wi = divmod(l, h)
            assert x[n, l, (pi * p + qi) * c + ch] == imgs[n, ch, hi * p + pi, wi * p + qi]
        assert torch.equal(model.unpatchify(x), imgs)


def check_masking():
    for name, path in FIXTURE_PATHS.items():
        fx = load_fixture(path)
        d, c = fx["data"], fx["attrs"]["/config"]
        n, num_patches = d["ids_shuffle"].shape
        len_keep = int(num_patches * (1 - float(c["mask_ratio"])))
        model = model_from_fixture(fx, torch.float64)
        x = torch.randn(n, num_patches, 5, dtype=torch.float64)
        x_masked, mask, ids_restore = model.random_masking(x, float(c["mask_ratio"]),
                                                           torch.from_numpy(d["ids_shuffle"]))
        assert np.array_equal(ids_restore.numpy(), d["ids_restore"]), name
        assert np.array_equal(mask.numpy(), d["mask"]), name
        for i in range(n):
            keep = d["ids_shuffle"][i, :len_keep]
            assert sorted(d["ids_shuffle"][i]) == list(range(num_patches)), f"{name}: not a permutation"
            assert torch.equal(x_masked[i], x[i, keep]), f"{name}: kept tokens not in shuffled order"
            assert not d["mask"][i, keep].any() and d["mask"][i].sum() == num_patches - len_keep
        assert d["latent"].shape[1] == 1 + len_keep
    # without ids_shuffle it draws a permutation itself, like the reference
    _, mask, ids_restore = model.random_masking(torch.randn(3, 16, 4), 0.75)
    assert sorted(ids_restore[0].tolist()) == list(range(16)) and mask.sum(1).tolist() == [12.0] * 3


def check_loss_by_hand():
    for name, path in FIXTURE_PATHS.items():
        fx = load_fixture(path)
        d, c = fx["data"], fx["attrs"]["/config"]
        p, ch = int(c["patch_size"]), int(c["in_chans"])
        imgs, pred, mask = d["images"], d["pred"], d["mask"]
        h = imgs.shape[2] // p
        total, count = 0.0, 0
        for n in range(imgs.shape[0]):
            for l in range(h * h):
                if mask[n, l] != 1:
                    continue
                hi, wi = divmod(l, h)
                block = imgs[n, :, hi * p:(hi + 1) * p, wi * p:(wi + 1) * p]   # [C, p, q]
                t = [block[k, i, j] for i in range(p) for j in range(p) for k in range(ch)]
                if c["norm_pix_loss"]:
                    mean = sum(t) / len(t)
                    var = sum((v - mean) ** 2 for v in t) / (len(t) - 1)    # unbiased
                    t = [(v - mean) / math.sqrt(var + 1e-6) for v in t]      # eps inside
                total += sum((a - b) ** 2 for a, b in zip(pred[n, l], t)) / len(t)
                count += 1
        rec = float(d["terms/rec_loss"] if "terms/rec_loss" in d else d["loss"])  # version 2: a term
        assert abs(total / count - rec) <= 1e-12 * abs(total / count), name


class ManualBatchNorm1d(nn.Module):
    """BatchNorm1d written out, with the state_dict names of torch's, to plant BN mistakes and to
    pin down the formula the C model must follow. In training mode:
        mean = sum_n h / N,  var = sum_n (h - mean)^2 / N           (biased, for normalising)
        y = (h - mean) / sqrt(var + eps) * weight + bias           (eps 1e-5)
        running_mean = (1 - momentum) * running_mean + momentum * mean           (momentum 0.1)
        running_var  = (1 - momentum) * running_var  + momentum * var * N / (N - 1)  (unbiased)
        num_batches_tracked += 1
    over all N rows of the batch, labeled or not. The options are the mistakes."""

    def __init__(self, bn, eps=supmae_torch.BN_EPS, momentum=supmae_torch.BN_MOMENTUM, unbiased_running=True,
                 stat_rows=None, detach_stats=False):
        super().__init__()
        self.weight, self.bias = bn.weight, bn.bias
        for k in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(k, getattr(bn, k))
        self.eps, self.momentum, self.unbiased_running = eps, momentum, unbiased_running
        self.stat_rows, self.detach_stats = stat_rows, detach_stats

    def forward(self, h):
        assert self.training
        rows = h if self.stat_rows is None else h[self.stat_rows()]
        n = rows.shape[0]
        mean = rows.mean(0)
        var = ((rows - mean) ** 2).mean(0)
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
            self.running_var.mul_(1 - self.momentum).add_(
                self.momentum * var * (n / (n - 1) if self.unbiased_running else 1.))
            self.num_batches_tracked.add_(1)
        if self.detach_stats:  # the backward treats the batch statistics as constants
            mean, var = mean.detach(), var.detach()
        return (h - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


def manual_bn(labeled_rows_only=False, **kwargs):
    """edit_model for replay(): the head's BatchNorm replaced by ManualBatchNorm1d(**kwargs)."""
    def edit(model):
        rows = (lambda: model.fixture_labels >= 0) if labeled_rows_only else None
        model.cls_head[1] = ManualBatchNorm1d(model.cls_head[1], stat_rows=rows, **kwargs)
    return edit


def supmae_fixtures():
    return {name: path for name, path in FIXTURE_PATHS.items()
            if gen_fixtures.FIXTURES[name].get("objective", {}).get("name") == "supmae"}


def check_supmae_by_hand():
    """The head, the CE and the loss of each SupMAE fixture in numpy from its /latent and /params."""
    paths = supmae_fixtures()
    assert paths, "no SupMAE fixture"
    for name, path in paths.items():
        fx = load_fixture(path)
        d, o = fx["data"], fx["attrs"]["/objective"]
        labels, latent, T = d["labels"], d["latent"], float(o["temperature"])
        feat = latent[:, 1:].mean(1) if o["global_pool"] else latent[:, 0]   # after the encoder norm
        h = feat @ d["params/cls_head.0.weight"].T + d["params/cls_head.0.bias"]
        mean, var = h.mean(0), h.var(0)                                     # biased, over all 6 rows
        h = (h - mean) / np.sqrt(var + 1e-5) * d["params/cls_head.1.weight"] + d["params/cls_head.1.bias"]
        logits = np.maximum(h, 0) @ d["params/cls_head.3.weight"].T + d["params/cls_head.3.bias"]
        assert rel_err(logits, d["outputs/logits"]) <= 1e-12, f"{name}: logits"
        z = logits / T
        lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
        lab = labels >= 0
        assert 0 < lab.sum() < len(labels), f"{name}: wants labeled and unlabeled samples"
        ce = float(np.mean(lse[lab] - z[lab, labels[lab]]))                 # mean over the labeled
        assert abs(ce - float(d["terms/cls_loss"])) <= 1e-12 * ce, f"{name}: cls_loss {ce}"
        total = float(d["terms/rec_loss"]) + float(o["cls_loss_ratio"]) * ce
        assert abs(total - float(d["loss"])) <= 1e-12 * total, f"{name}: loss"
        # the state: PyTorch's initial BN buffers, then one update per forward
        hidden = int(o["cls_hidden"])
        assert np.array_equal(d["state/cls_head.1.running_mean"], np.zeros(hidden))
        assert np.array_equal(d["state/cls_head.1.running_var"], np.ones(hidden))
        assert d["state/cls_head.1.num_batches_tracked"] == 0
        assert d["state_after/cls_head.1.num_batches_tracked"] == int(fx["attrs"]["/optim"]["steps"])
        assert not d["grads/cls_head.0.bias"].any() and not d["params_after/cls_head.0.bias"].any()
        # the BatchNorm formula written out reproduces torch's, state included, to round-off
        e = errors(fx, replay(fx, torch.float64, edit_model=manual_bn()))
        assert severity(e) < 1e-6, f"{name}: hand-written BatchNorm: {fmt(e)}"
        print(f"  {name}: logits, CE over {lab.sum()}/{len(labels)} labeled, loss and BN state by hand")


def check_gradcheck_supmae():
    """SupMAE's loss, rec + ratio * CE(logits / T) with one unlabeled sample, against finite
    differences: the BN head (training mode) with global pooling, and the linear head on CLS."""
    torch.manual_seed(8)
    for cls_hidden, global_pool in ((6, True), (0, False)):
        model = supmae_torch.supmae_model(img_size=4, patch_size=2, in_chans=2, embed_dim=8, depth=1, num_heads=2,
                                          decoder_embed_dim=8, decoder_depth=1, decoder_num_heads=2, mlp_ratio=2.,
                                          norm_pix_loss=True, cls_hidden=cls_hidden, num_classes=3,
                                          global_pool=global_pool).double()
        # the encoder and the head (the decoder is the MAE's, checked above)
        names = [n for n, p in model.named_parameters() if p.requires_grad and not n.startswith("decoder")
                 and n != "mask_token"]
        fixed = {n: p for n, p in model.named_parameters() if n not in names}
        imgs = torch.randn(4, 2, 4, 4, dtype=torch.float64)
        ids_shuffle = torch.stack([torch.randperm(4) for _ in range(4)])
        labels = torch.tensor([1, -1, 0, 2])

        def loss_fn(*params):
            state = dict(zip(names, params), **fixed)
            rec, _, _, logits = torch.nn.utils.stateless.functional_call(model, state, (imgs, 0.5, ids_shuffle))
            return supmae_torch.supmae_loss(rec, logits, labels, 0.5, 2.)[0]

        params = [dict(model.named_parameters())[n].detach().clone().requires_grad_(True) for n in names]
        assert torch.autograd.gradcheck(loss_fn, params, eps=1e-6, atol=1e-7, rtol=1e-5), (cls_hidden, global_pool)


def check_gradcheck():
    torch.manual_seed(7)
    # 2x2 grid of 2x2x2 patches: small enough for a full finite-difference Jacobian
    model = mae_torch.mae_model(img_size=4, patch_size=2, in_chans=2, embed_dim=8, depth=1, num_heads=2,
                                decoder_embed_dim=8, decoder_depth=1, decoder_num_heads=2,
                                mlp_ratio=2., norm_pix_loss=True).double()
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    frozen = {n: p for n, p in model.named_parameters() if not p.requires_grad}
    imgs = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    ids_shuffle = torch.stack([torch.randperm(4) for _ in range(2)])

    def loss_fn(imgs, *params):
        state = dict(zip(names, params), **frozen)
        loss, _, _ = torch.nn.utils.stateless.functional_call(model, state, (imgs, 0.5, ids_shuffle))
        return loss

    params = [p.detach().clone().requires_grad_(True) for n, p in model.named_parameters() if p.requires_grad]
    # the target depends on the images too (norm_pix), so their gradient is checked as well
    assert torch.autograd.gradcheck(loss_fn, (imgs, *params), eps=1e-6, atol=1e-7, rtol=1e-5)


def check_fixtures_regenerate():
    for name, path in FIXTURE_PATHS.items():
        fx = load_fixture(path)
        attrs, data = gen_fixtures.compute(name)
        a = fx["attrs"]
        version = gen_fixtures.MAE_VERSION if objective_of(fx) == "mae" else gen_fixtures.VERSION
        assert a["/"]["format"] == gen_fixtures.FORMAT and a["/"]["version"] == version
        assert a["/"]["version"] == attrs["/"]["version"] and a["/"]["version"].dtype == np.int64
        assert objective_of(fx) == attrs["/"].get("objective", "mae"), f"{name}: objective"
        assert isinstance(a["/"]["description"], str) and "torch" in a["/"]["generator"]
        assert set(a) == set(attrs), f"{name}: groups with attributes differ"
        assert set(a["/"]) == set(attrs["/"]), f"{name}: root attributes differ"
        for group in [g for g in attrs if g != "/"]:
            assert set(a[group]) == set(attrs[group]), f"{name}{group}: attributes differ"
            for k, v in attrs[group].items():
                assert a[group][k] == v and a[group][k].dtype == v.dtype, f"{name}{group}.{k}"
        assert set(fx["data"]) == set(data), f"{name}: datasets differ: {set(fx['data']) ^ set(data)}"
        worst = 0.0
        for k, v in data.items():
            f_v = fx["data"][k]
            assert f_v.shape == v.shape and f_v.dtype == np.dtype("<i8" if v.dtype.kind == "i" else "<f8"), k
            if v.dtype.kind == "i":
                assert np.array_equal(f_v, v), f"{name}/{k}"
            else:
                scale = float(np.linalg.norm(v))
                diff = float(np.linalg.norm(f_v - v))
                worst = max(worst, diff / scale if scale > 0 else diff)
        assert worst <= REGEN_TOL, f"{name}: regenerated arrays differ by {worst:.1e} (relative)"
        # the sets the format promises
        model = model_from_fixture(fx, torch.float64)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        buffers = {n for n, _ in model.named_buffers()}
        assert {k[6:] for k in data if k.startswith("grads/")} == trainable
        assert {k[13:] for k in data if k.startswith("params_after/")} == trainable
        assert {k[7:] for k in data if k.startswith("params/")} == set(model.state_dict()) - buffers
        assert {k[6:] for k in data if k.startswith("state/")} == buffers
        assert {k[12:] for k in data if k.startswith("state_after/")} == buffers
        if objective_of(fx) == "mae":
            assert not buffers and not any(k.startswith(("terms/", "outputs/", "labels")) for k in data)
        else:
            o, n_img = a["/objective"], data["images"].shape[0]
            assert set(o) == set(gen_fixtures.OBJECTIVE_KEYS[objective_of(fx)]), f"{name}: /objective keys"
            assert data["labels"].shape == (n_img,) and data["labels"].dtype.kind == "i"
            assert {k for k in data if k.startswith(("terms/", "outputs/"))} == \
                {"terms/rec_loss", "terms/cls_loss", "outputs/logits"}
            assert data["outputs/logits"].shape == (n_img, int(o["num_classes"]))
            assert all(data[k].shape == () for k in ("loss", "terms/rec_loss", "terms/cls_loss"))
            assert data["state/cls_head.1.num_batches_tracked"].dtype.kind == "i"
        lr = data["lr"]
        assert lr[0] == 0.0 and lr[1] < lr[2] and lr[3] < lr[2], f"{name}: schedule lacks warmup/cosine"
        print(f"  {name}: regenerated, max |diff| {worst:.1e}")


def key_bias_grad_zeroed(model):
    """The key third of a qkv bias has an exactly zero gradient (softmax ignores a shift that
    is the same for every key); write it as zero instead of summing round-off."""
    for m in model.modules():
        if isinstance(m, mae_torch.Attention):
            dim = m.proj.in_features

            def hook(g, dim=dim):
                g = g.clone()
                g[dim:2 * dim] = 0
                return g
            m.qkv.bias.register_hook(hook)


def check_float32_meets_tolerances():
    for name, path in FIXTURE_PATHS.items():
        fx = load_fixture(path)
        e = errors(fx, replay(fx, torch.float32, edit_model=key_bias_grad_zeroed))
        print(f"  {name} float32: {fmt(e)}")
        assert not breaks_tolerance(e), f"{name}: float32 misses a tolerance"
        plain = errors(fx, replay(fx, torch.float32))
        print(f"  {name} float32, key-bias round-off left in: {fmt(plain)}")
        if objective_of(fx) == "supmae":
            plain = errors(fx, replay(fx, torch.float32, edit_model=key_bias_grad_zeroed, zero_pre_bn_bias=False))
            print(f"  {name} float32, cls_head.0.bias round-off left in: {fmt(plain)}")


def _planted_mistakes():
    """name -> replay() keyword arguments planting one plausible implementation mistake."""
    def loss_with(var_unbiased, eps_inside):
        def edit(model):
            def forward_loss(imgs, pred, mask):
                t = model.patchify(imgs)
                if model.norm_pix_loss:
                    mean, var = t.mean(-1, keepdim=True), t.var(-1, keepdim=True, unbiased=var_unbiased)
                    t = (t - mean) / ((var + 1e-6) ** .5 if eps_inside else var ** .5 + 1e-6)
                return (((pred - t) ** 2).mean(-1) * mask).sum() / mask.sum()
            model.forward_loss = forward_loss
        return edit

    def swap_pos_halves(model):
        with torch.no_grad():
            for pe in (model.pos_embed, model.decoder_pos_embed):
                d = pe.shape[-1] // 2
                pe.copy_(torch.cat([pe[..., d:], pe[..., :d]], -1))

    def set_modules(kind, **attrs):
        def edit(model):
            for m in model.modules():
                if isinstance(m, kind):
                    for k, v in attrs.items():
                        setattr(m, k, v)
        return edit

    def scale_by_dim(model):
        for m in model.modules():
            if isinstance(m, mae_torch.Attention):
                m.scale = m.proj.in_features ** -.5

    def target_order_cpq(model):
        patchify = model.patchify

        def cpq(imgs):
            n, c, size, _ = imgs.shape
            p = model.patch_embed.patch_size[0]
            h = size // p
            return imgs.reshape(n, c, h, p, h, p).permute(0, 2, 4, 1, 3, 5).reshape(n, h * h, c * p * p)
        model.patchify = cpq if model.in_chans > 1 else patchify

    def mask_tokens_not_unshuffled(model):
        def forward_decoder(x, ids_restore):
            x = model.decoder_embed(x)
            tokens = model.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
            x = torch.cat([x, tokens], dim=1) + model.decoder_pos_embed
            for blk in model.decoder_blocks:
                x = blk(x)
            return model.decoder_pred(model.decoder_norm(x))[:, 1:, :]
        model.forward_decoder = forward_decoder

    def decay_everything(model, groups):
        return [{"params": groups[0]["params"] + groups[1]["params"], "weight_decay": groups[1]["weight_decay"]}]

    def no_decay_on_tokens(model, groups):
        tokens = [model.cls_token, model.mask_token]
        rest = [p for p in groups[1]["params"] if all(p is not t for t in tokens)]
        return [{"params": groups[0]["params"] + tokens, "weight_decay": 0.},
                {"params": rest, "weight_decay": groups[1]["weight_decay"]}]

    def betas(b1, b2):
        def edit(model, groups):
            for g in groups:
                g["betas"] = (b1, b2)
            return groups
        return edit

    def warmup_from_step_one(step, lr, min_lr, warmup, total):
        return mae_torch.lr_at_step(step + 1, lr, min_lr, warmup, total) if step < warmup else \
            mae_torch.lr_at_step(step, lr, min_lr, warmup, total)

    return {
        "norm_pix with biased variance": dict(edit_model=loss_with(False, True)),
        "norm_pix with eps outside the sqrt": dict(edit_model=loss_with(True, False)),
        "pos-embed halves swapped (row first)": dict(edit_model=swap_pos_halves),
        "tanh GELU": dict(edit_model=set_modules(nn.GELU, approximate="tanh")),
        "LayerNorm eps 1e-5": dict(edit_model=set_modules(nn.LayerNorm, eps=1e-5)),
        "target patch order (c,p,q)": dict(edit_model=target_order_cpq),
        "attention scale 1/sqrt(dim)": dict(edit_model=scale_by_dim),
        "mask tokens not unshuffled": dict(edit_model=mask_tokens_not_unshuffled),
        "weight decay on every parameter": dict(edit_groups=decay_everything),
        "no weight decay on cls/mask tokens": dict(edit_groups=no_decay_on_tokens),
        "AdamW betas (0.9, 0.999)": dict(edit_groups=betas(0.9, 0.999)),
        "warmup starting at lr/warmup": dict(lr_fn=warmup_from_step_one),
    }


def _planted_supmae_mistakes():
    """name -> replay() keyword arguments planting one plausible SupMAE mistake (in the head, its
    loss, its BatchNorm or its backward); replayed on the SupMAE fixtures."""
    def classify_with(pool):
        def edit(model):
            def forward_classification(x):
                return model.cls_head(pool(model, x))
            model.forward_classification = forward_classification
        return edit

    def pool_then_norm(model):
        """the encoder's final LayerNorm applied after pooling instead of before"""
        norm = model.norm

        def forward(imgs, mask_ratio, ids_shuffle):
            model.norm = nn.Identity()
            raw, mask, ids_restore = model.forward_encoder(imgs, mask_ratio, ids_shuffle)
            model.norm = norm
            latent = norm(raw)
            pred = model.forward_decoder(latent, ids_restore)
            logits = model.cls_head(norm(raw[:, 1:].mean(1)))
            return model.forward_loss(imgs, pred, mask), pred, mask, logits
        model.forward = forward

    def loss_with(ratio=None, temperature=None, over_all_samples=False, grad_times_t=False):
        def loss_fn(rec_loss, logits, labels, cls_loss_ratio, temp):
            t = temperature if temperature is not None else temp
            z = logits / t
            if grad_times_t:  # forward unchanged, d(loss)/d(logits) not divided by T
                z = logits / t + (logits - logits.detach()) * (1 - 1 / t)
            target = supmae_torch.criterion_labels(labels)
            if over_all_samples:
                ce = nn.functional.cross_entropy(z, target, ignore_index=-100, reduction="sum") / len(labels)
            else:
                ce = nn.functional.cross_entropy(z, target, ignore_index=-100)
            return (ratio if ratio is not None else cls_loss_ratio) * ce + rec_loss, ce
        return dict(loss_fn=loss_fn)

    def bn_eval(model):
        model.cls_head[1].eval()

    return {
        "pooling includes the CLS token": dict(edit_model=classify_with(lambda m, x: x.mean(1))),
        "pooling the CLS token only (global_pool ignored)": dict(edit_model=classify_with(lambda m, x: x[:, 0])),
        "final norm applied after pooling, not before": dict(edit_model=pool_then_norm),
        "no head gradient into the encoder (pooled feature detached)":
            dict(edit_model=classify_with(lambda m, x: x[:, 1:].mean(1).detach())),
        "pooled gradient spread over the CLS row too (backward only)":
            dict(edit_model=classify_with(lambda m, x: x.mean(1) + (x[:, 1:].mean(1) - x.mean(1)).detach())),
        "no temperature (logits / 1)": loss_with(temperature=1.),
        "CE gradient not divided by the temperature": loss_with(grad_times_t=True),
        "CE averaged over all samples, unlabeled included": loss_with(over_all_samples=True),
        "cls_loss_ratio forgotten (1)": loss_with(ratio=1.),
        "BatchNorm in eval mode (running statistics)": dict(edit_model=bn_eval),
        "BatchNorm running_var from the biased variance": dict(edit_model=manual_bn(unbiased_running=False)),
        "BatchNorm momentum 0.9 (weight of the new batch)": dict(edit_model=manual_bn(momentum=0.9)),
        "BatchNorm eps 1e-6 (LayerNorm's)": dict(edit_model=manual_bn(eps=1e-6)),
        "BatchNorm statistics over the labeled samples only": dict(edit_model=manual_bn(labeled_rows_only=True)),
        "BatchNorm backward with the batch statistics as constants": dict(edit_model=manual_bn(detach_stats=True)),
    }


def check_fixtures_catch_mistakes():
    fixtures = {name: load_fixture(path) for name, path in FIXTURE_PATHS.items()}
    supmae = {name: fixtures[name] for name in supmae_fixtures()}
    for planted, on in ((_planted_mistakes(), fixtures), (_planted_supmae_mistakes(), supmae)):
        for mistake, kwargs in planted.items():
            worst = {name: errors(fx, replay(fx, torch.float64, **kwargs)) for name, fx in on.items()}
            caught = [name for name, e in worst.items() if breaks_tolerance(e)]
            name = max(worst, key=lambda k: severity(worst[k]))
            print(f"  {mistake}: caught by {len(caught)}/{len(worst)}; {name}: {fmt(worst[name])}")
            assert caught, f"no fixture catches: {mistake}"


CHECKS = [check_pos_embed, check_patchify, check_masking, check_loss_by_hand, check_supmae_by_hand,
          check_gradcheck, check_gradcheck_supmae, check_fixtures_regenerate, check_float32_meets_tolerances,
          check_fixtures_catch_mistakes]


def main():
    torch.set_num_threads(1)
    failed = 0
    for check in CHECKS:
        t0 = time.time()
        try:
            check()
            print(f"ok   {check.__name__} ({time.time() - t0:.1f} s)", flush=True)
        except Exception:  # report every check, then fail
            failed += 1
            print(f"FAIL {check.__name__}\n{traceback.format_exc()}", flush=True)
    print(f"{len(CHECKS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
