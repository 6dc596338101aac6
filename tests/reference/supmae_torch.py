#!/usr/bin/python3
"""PyTorch reference for maec's SupMAE: the Supervised MAE of enyac-group/supmae, ported on top of
mae_torch.py (the port of facebookresearch/mae, which this module imports and extends).

Source: github.com/enyac-group/supmae, commit e57df206ee445680dcb9f1ee3ed07bae2997a9c0
(Liang, Li and Marculescu, "Supervised Masked Autoencoders Are Efficient Vision Learners",
arXiv 2205.14540). Ported from it:
  models_supmae.py  27-28    constructor arguments cls_hidden_mlp=3072, nb_classes=1000,
                             global_pool=True, mlp_depth=2
                    61-74    the classification head: Linear(D, cls_hidden_mlp), BatchNorm1d,
                             ReLU(inplace), Linear(cls_hidden_mlp, nb_classes) as nn.Sequential
                             (state_dict cls_head.0 / .1 / .3); cls_hidden_mlp == 0: one Linear
                             named cls_head
                    79, 98-109  initialize_weights() runs after the head is built, so the head's
                             Linears get xavier_uniform weights and zero biases from _init_weights;
                             BatchNorm1d keeps PyTorch's defaults (weight 1, bias 0, running_mean
                             0, running_var 1)
                    214-220  forward_classification: global_pool -> mean over x[:, 1:] (patch
                             tokens, CLS excluded) of the encoder output, which is already after
                             the encoder's final LayerNorm (forward_encoder line 184); no further
                             norm; else the CLS row x[:, 0]
                    240-247  forward: latent -> decoder (pred) -> classification (logits) ->
                             reconstruction loss; returns (rec_loss, pred, mask, logits)
  engine_pretrain.py 25      model.train(True): the BatchNorm uses batch statistics and updates
                             its running statistics (momentum 0.1) on every forward
                    32-34    cls_loss_ratio, temperature, nn.CrossEntropyLoss(ignore_index=-100)
                    50-52    cls_loss = criterion(logits / temperature, labels) * cls_loss_ratio;
                             loss = cls_loss + rec_loss (note: the logged cls_loss includes the
                             ratio; supmae_loss() returns the CE before the ratio)
  main_pretrain_supmae.py 60-69  --temperature 10.0, --cls_loss_ratio 0.01, --mlp_depth 2,
                             --nb_classes 1000 (never passed to the model), --global_pool
                             (store_true, so False unless given; PRETRAIN.md line 6 gives it)
                    167-169  the model gets norm_pix_loss, global_pool and mlp_depth only
The encoder, decoder, masking and reconstruction loss of models_supmae.py (lines 20-59, 81-238)
are those of facebookresearch/mae's models_mae.py line for line, so they come from mae_torch.py.

Deliberate differences, none of which changes a number where a batch has a labeled sample:
  - labels use maec's convention, -1 = unlabeled; supmae_loss() maps -1 to the criterion's
    ignore_index -100, so an unlabeled sample adds no CE term, and the CE is the mean over the
    labeled samples of the batch (what ignore_index does);
  - a batch without any labeled sample gets a CE of exactly 0 (with a graph), where the official
    CrossEntropyLoss returns NaN (0 / 0);
  - forward() accepts a given ids_shuffle, as mae_torch's does;
  - zero_pre_bn_bias_grad() (used by the fixtures) writes the exact zero gradient of
    cls_head.0.bias under a training-mode BatchNorm where autograd sums round-off;
  - the factories take maec's config names (cls_hidden, num_classes, global_pool), mapped to the
    official cls_hidden_mlp, nb_classes, global_pool.
Everything mae_torch.py says about its own port holds here too. Mixed precision
(torch.cuda.amp.autocast in engine_pretrain.py line 49) and accum_iter are outside the fixtures.

Only torch and numpy are needed; run with Debian's /usr/bin/python3.
"""

import sys
from functools import partial
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mae_torch  # noqa: E402

IGNORE_INDEX = -100      # engine_pretrain.py line 34
UNLABELED = -1           # maec's label for a sample without one
PAPER_DEFAULTS = dict(cls_loss_ratio=0.01, temperature=10.0, cls_hidden=3072, global_pool=True)

# torch.nn.BatchNorm1d's defaults, which models_supmae.py line 70 keeps
BN_EPS, BN_MOMENTUM = 1e-5, 0.1


class SupervisedMaskedAutoencoderViT(mae_torch.MaskedAutoencoderViT):
    """models_supmae.SupervisedMaskedAutoencoderViT: MAE plus a classifier on the encoder output."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3,
                 embed_dim=1024, depth=24, num_heads=16,
                 decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16,
                 mlp_ratio=4., norm_layer=nn.LayerNorm, norm_pix_loss=False,
                 cls_hidden_mlp=3072, nb_classes=1000, global_pool=True,
                 mlp_depth=2):
        # MaskedAutoencoderViT.__init__ builds the encoder and decoder in the official order and
        # ends with initialize_weights(), which is skipped (below) while there is no cls_head:
        # the official builds the head (drawing PyTorch's default Linear init) before calling
        # initialize_weights() (line 79), so the same seed gives the same draws.
        super().__init__(img_size=img_size, patch_size=patch_size, in_chans=in_chans,
                         embed_dim=embed_dim, depth=depth, num_heads=num_heads,
                         decoder_embed_dim=decoder_embed_dim, decoder_depth=decoder_depth,
                         decoder_num_heads=decoder_num_heads, mlp_ratio=mlp_ratio,
                         norm_layer=norm_layer, norm_pix_loss=norm_pix_loss)

        # models_supmae.py lines 61-74
        if cls_hidden_mlp == 0:
            self.cls_head = nn.Linear(embed_dim, nb_classes)
        else:
            assert mlp_depth in [2], "mlp depth should be 2"
            self.cls_head = nn.Sequential(
                nn.Linear(embed_dim, cls_hidden_mlp),
                nn.BatchNorm1d(cls_hidden_mlp),        # eps 1e-5, momentum 0.1
                nn.ReLU(inplace=True),
                nn.Linear(cls_hidden_mlp, nb_classes),
            )
        self.global_pool = global_pool

        self.initialize_weights()

    def initialize_weights(self):
        if "cls_head" not in self._modules:  # called by the parent's __init__: wait for the head
            return
        super().initialize_weights()  # pos embeds, patch embed, tokens, then apply(_init_weights)

    def forward_classification(self, x):
        """models_supmae.py lines 214-220. x is forward_encoder's output (after self.norm)."""
        if self.global_pool:
            feat = x[:, 1:, :].mean(dim=1)  # global pool without cls token
        else:
            feat = x[:, 0, :]  # with cls token
        return self.cls_head(feat)

    def forward(self, imgs, mask_ratio=0.75, ids_shuffle=None):
        """models_supmae.py lines 240-247: returns (rec_loss, pred, mask, logits)."""
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio, ids_shuffle)
        pred = self.forward_decoder(latent, ids_restore)  # [N, L, p*p*C]
        logits = self.forward_classification(latent)
        loss = self.forward_loss(imgs, pred, mask)
        return loss, pred, mask, logits


def criterion_labels(labels):
    """maec's labels (-1 = unlabeled, else 0..K-1) -> the criterion's (-100 = ignored)."""
    assert labels.dtype == torch.int64 and bool((labels >= UNLABELED).all()), labels
    return torch.where(labels == UNLABELED, torch.full_like(labels, IGNORE_INDEX), labels)


def cls_cross_entropy(logits, labels, temperature):
    """CrossEntropyLoss(ignore_index=-100)(logits / temperature, labels) with maec's labels: the
    mean over the labeled samples; 0 when none is labeled (the official gives NaN there)."""
    target = criterion_labels(labels)
    if not bool((target != IGNORE_INDEX).any()):
        return (logits * 0.).sum()
    return nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)(logits / temperature, target)


def supmae_loss(rec_loss, logits, labels, cls_loss_ratio=0.01, temperature=10.0):
    """engine_pretrain.py lines 50-52: loss = cls_loss_ratio * CE(logits / T) + rec_loss.
    Returns (loss, ce) with ce the cross-entropy before the ratio."""
    ce = cls_cross_entropy(logits, labels, temperature)
    return ce * cls_loss_ratio + rec_loss, ce


def supmae_model(img_size=224, patch_size=16, in_chans=3, embed_dim=768, depth=12, num_heads=12,
                 decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.,
                 norm_pix_loss=False, cls_hidden=3072, num_classes=1000, global_pool=True, mlp_depth=2):
    """Any size, built as the official factories build theirs (LayerNorm eps 1e-6), with maec's
    names for the head: cls_hidden (0 = one Linear), num_classes, global_pool."""
    return SupervisedMaskedAutoencoderViT(
        img_size=img_size, patch_size=patch_size, in_chans=in_chans,
        embed_dim=embed_dim, depth=depth, num_heads=num_heads,
        decoder_embed_dim=decoder_embed_dim, decoder_depth=decoder_depth,
        decoder_num_heads=decoder_num_heads, mlp_ratio=mlp_ratio,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), norm_pix_loss=norm_pix_loss,
        cls_hidden_mlp=cls_hidden, nb_classes=num_classes, global_pool=global_pool, mlp_depth=mlp_depth)


def mae_vit_base_patch16_dec512d8b(**kwargs):
    """models_supmae.py lines 250-255 (mae_vit_base_patch16)."""
    return supmae_model(patch_size=16, embed_dim=768, depth=12, num_heads=12,
                        decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, **kwargs)


def mae_vit_base_patch16_dec512d1b(**kwargs):
    """models_supmae.py lines 258-263 (mae_vit_base_patch16_d1b, the recommended one)."""
    return supmae_model(patch_size=16, embed_dim=768, depth=12, num_heads=12,
                        decoder_embed_dim=512, decoder_depth=1, decoder_num_heads=16, **kwargs)


mae_vit_base_patch16 = mae_vit_base_patch16_dec512d8b
mae_vit_base_patch16_d1b = mae_vit_base_patch16_dec512d1b


def zero_pre_bn_bias_grad(model):
    """Make the gradient of cls_head.0.bias (the Linear before the BatchNorm) exactly zero.

    In training mode the BatchNorm subtracts the batch mean, so a shift that is the same for
    every row has no effect on any output: the true gradient of that bias is exactly 0 (as for
    the key third of a qkv bias). PyTorch's float64 backward sums round-off there (about 1e-18),
    a float32 one about 1e-9, which AdamW (eps 1e-8) turns into updates of up to lr. The
    fixtures record the exact zero, so their cls_head.0.bias stays 0 through the steps, and a C
    model must write 0 for that gradient instead of summing it. No other number changes. Returns
    the hook handle (None for a head without BatchNorm)."""
    head = model.cls_head
    if not isinstance(head, nn.Sequential) or not isinstance(head[1], nn.BatchNorm1d):
        return None

    def hook(g):
        return torch.zeros_like(g) if head[1].training else g
    return head[0].bias.register_hook(hook)


def buffer_names(model):
    """The non-trainable state (BatchNorm running statistics), kept apart from the parameters."""
    return [n for n, _ in model.named_buffers()]
