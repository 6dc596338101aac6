#!/usr/bin/python3
"""PyTorch reference for maec: the MAE of facebookresearch/mae, ported faithfully.

Sources followed line by line:
  facebookresearch/mae  models_mae.py       MaskedAutoencoderViT, the mae_vit_* factories
  facebookresearch/mae  util/pos_embed.py   2-D sin-cos tables (np.float = float64 omega)
  facebookresearch/mae  util/lr_sched.py    warmup + half-cosine, here per step
  facebookresearch/mae  main_pretrain.py    add_weight_decay groups, AdamW betas (0.9, 0.95)
  timm 0.3.2            vision_transformer  PatchEmbed, Mlp, Attention, Block (what MAE imports)

Deliberate differences, none of which changes a number:
  - patchify/unpatchify use in_chans where the reference hard-codes 3, so single-channel
    models work (the reference already sizes decoder_pred with in_chans);
  - random_masking optionally takes a given ids_shuffle (the argsort of the noise), so
    fixtures can fix the masks; without it, it draws torch.rand noise like the reference;
  - the binary mask takes the activations' dtype instead of float32 (its values are 0/1);
  - timm's Dropout / DropPath modules are left out: MAE pre-training builds them with rate 0.
Modules are created in the reference's order, so torch.manual_seed(s) should drive the same
sequence of init draws as the reference with the same seed (not compared against a real timm
install, which is not available here).

Only torch and numpy are needed; run with Debian's /usr/bin/python3.
"""

import math
from functools import partial

import numpy as np
import torch
import torch.nn as nn


# ---------------------------------------------------------------------------------------------
# util/pos_embed.py

def get_1d_sincos_pos_embed_from_grid(embed_dim, pos):
    """[M] positions -> [M, embed_dim]: all sines first, then all cosines (not interleaved)."""
    assert embed_dim % 2 == 0
    # The reference uses np.float (float64); forks that replaced it with np.float32 for
    # NumPy >= 1.24 compute a slightly different (float32-accurate) table.
    omega = np.arange(embed_dim // 2, dtype=np.float64)
    omega /= embed_dim / 2.
    omega = 1. / 10000**omega
    pos = pos.reshape(-1)
    out = np.einsum('m,d->md', pos, omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def get_2d_sincos_pos_embed(embed_dim, grid_size, cls_token=False):
    """[G*G (+1), embed_dim] float64 table; token n = i*G + j (row i, column j).

    np.meshgrid(grid_w, grid_h) puts the column index j in grid[0], so the first half of the
    channels encodes the column and the second half the row. Row 0 (cls) is all zeros.
    """
    assert embed_dim % 2 == 0
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.stack(np.meshgrid(grid_w, grid_h), axis=0).reshape([2, 1, grid_size, grid_size])
    emb = np.concatenate([get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0]),
                          get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1])], axis=1)
    if cls_token:
        emb = np.concatenate([np.zeros([1, embed_dim]), emb], axis=0)
    return emb


# ---------------------------------------------------------------------------------------------
# timm 0.3.2 timm/models/vision_transformer.py (the classes MAE imports)

class PatchEmbed(nn.Module):
    """Image to patch tokens: Conv2d with kernel = stride = patch, then [N, L, D]."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768):
        super().__init__()
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.num_patches = (img_size // patch_size) * (img_size // patch_size)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        _, _, H, W = x.shape
        assert H == self.img_size[0] and W == self.img_size[1], \
            f"Input image size ({H}*{W}) doesn't match model ({self.img_size[0]}*{self.img_size[1]})."
        return self.proj(x).flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()  # exact erf form, PyTorch's default
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)  # rows: q (all heads), k, v
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        # timm 0.3.2 scales the logits, not q (later timm versions scale q first).
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim, num_heads, mlp_ratio=4., qkv_bias=False, qk_scale=None,
                 norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


# ---------------------------------------------------------------------------------------------
# models_mae.py

class MaskedAutoencoderViT(nn.Module):
    """Masked Autoencoder with VisionTransformer backbone."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3,
                 embed_dim=1024, depth=24, num_heads=16,
                 decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16,
                 mlp_ratio=4., norm_layer=nn.LayerNorm, norm_pix_loss=False):
        super().__init__()
        self.in_chans = in_chans

        # encoder
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        # fixed sin-cos table: a Parameter that is never trained, as in the reference, so the
        # state_dict names and add_weight_decay's view of it are the same
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, qk_scale=None, norm_layer=norm_layer)
            for _ in range(depth)])
        self.norm = norm_layer(embed_dim)

        # decoder
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, decoder_embed_dim),
                                              requires_grad=False)
        self.decoder_blocks = nn.ModuleList([
            Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True, qk_scale=None,
                  norm_layer=norm_layer)
            for _ in range(decoder_depth)])
        self.decoder_norm = norm_layer(decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size**2 * in_chans, bias=True)

        self.norm_pix_loss = norm_pix_loss
        self.initialize_weights()

    def initialize_weights(self):
        grid = int(self.patch_embed.num_patches**.5)
        # computed in float64, stored in the module's dtype (float32 in the reference)
        self.pos_embed.data.copy_(torch.from_numpy(
            get_2d_sincos_pos_embed(self.pos_embed.shape[-1], grid, cls_token=True)).unsqueeze(0))
        self.decoder_pos_embed.data.copy_(torch.from_numpy(
            get_2d_sincos_pos_embed(self.decoder_pos_embed.shape[-1], grid, cls_token=True)).unsqueeze(0))

        # patch embedding initialised like a Linear [D, C*p*p]; its bias keeps PyTorch's Conv2d
        # default U(-1/sqrt(C*p*p), +1/sqrt(C*p*p)) because _init_weights only sees Linear/LayerNorm
        w = self.patch_embed.proj.weight.data
        torch.nn.init.xavier_uniform_(w.view([w.shape[0], -1]))

        # the reference's comment: timm's trunc_normal_(std=.02) is effectively normal_(std=.02)
        torch.nn.init.normal_(self.cls_token, std=.02)
        torch.nn.init.normal_(self.mask_token, std=.02)

        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            # one xavier_uniform_ over the whole fused qkv [3D, D]: bound sqrt(6 / (D + 3D))
            torch.nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def patchify(self, imgs):
        """[N, C, H, W] -> [N, L, p*p*C], patch vector in (row p, column q, channel c) order."""
        p = self.patch_embed.patch_size[0]
        c = self.in_chans
        assert imgs.shape[2] == imgs.shape[3] and imgs.shape[2] % p == 0
        h = w = imgs.shape[2] // p
        x = imgs.reshape(shape=(imgs.shape[0], c, h, p, w, p))
        x = torch.einsum('nchpwq->nhwpqc', x)
        return x.reshape(shape=(imgs.shape[0], h * w, p**2 * c))

    def unpatchify(self, x):
        """[N, L, p*p*C] -> [N, C, H, W]."""
        p = self.patch_embed.patch_size[0]
        c = self.in_chans
        h = w = int(x.shape[1]**.5)
        assert h * w == x.shape[1]
        x = x.reshape(shape=(x.shape[0], h, w, p, p, c))
        x = torch.einsum('nhwpqc->nchpwq', x)
        return x.reshape(shape=(x.shape[0], c, h * p, h * p))

    def random_masking(self, x, mask_ratio, ids_shuffle=None):
        """Keep the first len_keep patches of a per-sample permutation.

        x: [N, L, D]. ids_shuffle: [N, L] int64, the argsort of uniform noise; drawn here
        (torch.rand, as the reference) when not given. Kept tokens stay in shuffled order.
        Returns x_masked [N, len_keep, D], mask [N, L] (1 = removed), ids_restore [N, L].
        """
        N, L, D = x.shape
        len_keep = int(L * (1 - mask_ratio))
        if ids_shuffle is None:
            noise = torch.rand(N, L, device=x.device)
            ids_shuffle = torch.argsort(noise, dim=1)  # ascending: small is keep
        assert ids_shuffle.shape == (N, L)
        ids_restore = torch.argsort(ids_shuffle, dim=1)

        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))

        # built in shuffled order, then unshuffled
        mask = torch.ones([N, L], device=x.device, dtype=x.dtype)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, dim=1, index=ids_restore)
        return x_masked, mask, ids_restore

    def forward_encoder(self, x, mask_ratio, ids_shuffle=None):
        x = self.patch_embed(x)
        x = x + self.pos_embed[:, 1:, :]  # position added before masking
        x, mask, ids_restore = self.random_masking(x, mask_ratio, ids_shuffle)

        cls_token = self.cls_token + self.pos_embed[:, :1, :]
        cls_tokens = cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)

        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return x, mask, ids_restore

    def forward_decoder(self, x, ids_restore):
        x = self.decoder_embed(x)  # cls row included

        # append mask tokens, unshuffle, put cls back in front
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1)

        x = x + self.decoder_pos_embed

        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x)
        x = self.decoder_pred(x)
        return x[:, 1:, :]  # drop cls

    def forward_loss(self, imgs, pred, mask):
        """Mean squared error per patch, averaged over the removed patches only."""
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)  # unbiased: divides by p*p*C - 1
            target = (target - mean) / (var + 1.e-6)**.5  # eps inside the sqrt
        loss = (pred - target) ** 2
        loss = loss.mean(dim=-1)
        return (loss * mask).sum() / mask.sum()

    def forward(self, imgs, mask_ratio=0.75, ids_shuffle=None):
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio, ids_shuffle)
        pred = self.forward_decoder(latent, ids_restore)
        loss = self.forward_loss(imgs, pred, mask)
        return loss, pred, mask


def mae_model(img_size=224, patch_size=16, in_chans=3, embed_dim=768, depth=12, num_heads=12,
              decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.,
              norm_pix_loss=False):
    """Any size, built as the reference's factories build theirs (LayerNorm eps 1e-6)."""
    return MaskedAutoencoderViT(
        img_size=img_size, patch_size=patch_size, in_chans=in_chans,
        embed_dim=embed_dim, depth=depth, num_heads=num_heads,
        decoder_embed_dim=decoder_embed_dim, decoder_depth=decoder_depth,
        decoder_num_heads=decoder_num_heads, mlp_ratio=mlp_ratio,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), norm_pix_loss=norm_pix_loss)


def mae_vit_base_patch16_dec512d8b(**kwargs):
    return mae_model(patch_size=16, embed_dim=768, depth=12, num_heads=12, **kwargs)


def mae_vit_large_patch16_dec512d8b(**kwargs):
    return mae_model(patch_size=16, embed_dim=1024, depth=24, num_heads=16, **kwargs)


def mae_vit_huge_patch14_dec512d8b(**kwargs):
    return mae_model(patch_size=14, embed_dim=1280, depth=32, num_heads=16, **kwargs)


# ---------------------------------------------------------------------------------------------
# main_pretrain.py / util/lr_sched.py: optimizer and schedule

def param_groups_weight_decay(model, weight_decay):
    """timm 0.3.2 optim_factory.add_weight_decay(model, weight_decay) with no skip list.

    Frozen parameters (the pos embeds) are left out; 1-D tensors and names ending in '.bias'
    get no decay; everything else decays, including cls_token and mask_token ([1, 1, D]).
    """
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if len(param.shape) == 1 or name.endswith(".bias"):
            no_decay.append(param)
        else:
            decay.append(param)
    return [{'params': no_decay, 'weight_decay': 0.},
            {'params': decay, 'weight_decay': weight_decay}]


def no_weight_decay_names(model):
    """Names of the trainable parameters in the no-decay group (for docs and checks)."""
    return [n for n, p in model.named_parameters()
            if p.requires_grad and (len(p.shape) == 1 or n.endswith(".bias"))]


def make_optimizer(model, lr, weight_decay=0.05, betas=(0.9, 0.95), eps=1e-8):
    """AdamW as main_pretrain.py builds it (eps is PyTorch's default there)."""
    return torch.optim.AdamW(param_groups_weight_decay(model, weight_decay), lr=lr, betas=betas, eps=eps)


def lr_at_step(step, lr, min_lr, warmup_steps, total_steps):
    """util/lr_sched.adjust_learning_rate with the (fractional) epoch counted in steps.

    Linear warmup from exactly 0 at step 0, then a half cosine from lr down to min_lr.
    """
    if step < warmup_steps:
        return lr * step / warmup_steps
    return min_lr + (lr - min_lr) * 0.5 * \
        (1. + math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps)))


def set_lr(optimizer, lr):
    """The schedule sets one lr on every group (pre-training has no lr_scale)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
