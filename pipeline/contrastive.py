"""Losses and retrieval metrics for training a CLIP (seed 001), in torch.

* :func:`info_nce` — CLIP's symmetric contrastive loss (Radford et al., ICML 2021, Fig. 3;
  InfoNCE of van den Oord et al. 2018), with optional multi-positive targets for captions that
  several images share (UniCL, Yang et al. CVPR 2022);
* :class:`LogitScale` — CLIP's learnable temperature, initialised at 1/0.07 and clamped at 100;
* :func:`triplet_max_violation` — VSE++ hinge triplet loss on the hardest negative (Faghri et al.,
  BMVC 2018), seed 003's triplet loss;
* :func:`retrieval_topk` — image -> text top-k accuracy over a caption set (seed 001's metric).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class LogitScale(nn.Module):
    """s = exp(t), t learnable, t_0 = log(1 / 0.07); s is clamped to <= ``max_scale`` (100), as in CLIP."""

    def __init__(self, init_temperature: float = 0.07, max_scale: float = 100.0):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.max_log = math.log(max_scale)

    def forward(self) -> torch.Tensor:
        return self.log_scale.clamp(max=self.max_log).exp()


def _targets(labels: torch.Tensor | None, n: int, device) -> torch.Tensor:
    """Row-stochastic target matrix: identity, or uniform over the rows sharing a caption label."""
    if labels is None:
        return torch.eye(n, device=device)
    same = (labels[:, None] == labels[None, :]).float()
    return same / same.sum(1, keepdim=True)


def info_nce(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor | float,
             labels: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE on L2-normalised embeddings (row i of ``image`` pairs with row i of ``text``):

        L = 1/2 [ CE(s I T^T, Y) + CE(s T I^T, Y^T) ],   CE(Z, Y) = -1/n sum_ij Y_ij log softmax(Z)_ij

    with Y = I, or (``labels`` given) Y_ij uniform over the j whose caption label equals row i's.
    """
    image = nn.functional.normalize(image, dim=-1)
    text = nn.functional.normalize(text, dim=-1)
    logits = scale * image @ text.T
    Y = _targets(labels, len(image), image.device)
    i2t = -(Y * logits.log_softmax(1)).sum(1).mean()
    t2i = -(Y.T * logits.T.log_softmax(1)).sum(1).mean()
    return (i2t + t2i) / 2


def triplet_max_violation(image: torch.Tensor, text: torch.Tensor, margin: float = 0.2,
                          labels: torch.Tensor | None = None) -> torch.Tensor:
    """VSE++ (Faghri et al. 2018, eq. 5) on cosine similarities S = I T^T:

        L = 1/n sum_i  max_{j neg} [m + S_ij - S_ii]_+  +  max_{j neg} [m + S_ji - S_ii]_+

    the hardest negative caption for each image and the hardest negative image for each caption;
    rows sharing a caption label with i are not negatives.
    """
    image = nn.functional.normalize(image, dim=-1)
    text = nn.functional.normalize(text, dim=-1)
    S = image @ text.T
    pos = S.diag()
    if labels is None:
        neg = ~torch.eye(len(S), dtype=torch.bool, device=S.device)
    else:
        neg = labels[:, None] != labels[None, :]
    very_low = torch.finfo(S.dtype).min
    hardest_text = S.masked_fill(~neg, very_low).max(1).values
    hardest_image = S.masked_fill(~neg, very_low).max(0).values
    cost = (margin + hardest_text - pos).clamp(min=0) + (margin + hardest_image - pos).clamp(min=0)
    return cost.sum() / len(S)  # a row without negatives costs [m + min - S_ii]_+ = 0


def retrieval_topk(image: np.ndarray, captions: np.ndarray, truth: np.ndarray, ks=(1, 5)) -> dict[int, float]:
    """Image -> text retrieval: rank the caption set by cos(E_I(x), E_T(c)); top-k accuracy is the
    fraction of images whose true caption index ``truth`` is among the k best. Ties rank by index."""
    image = image / np.linalg.norm(image, axis=1, keepdims=True)
    captions = captions / np.linalg.norm(captions, axis=1, keepdims=True)
    S = image @ captions.T
    true_score = S[np.arange(len(S)), truth]
    # rank of the true caption = captions scoring higher, plus equal-scoring ones with a lower index
    higher = (S > true_score[:, None]).sum(1)
    ties = ((S == true_score[:, None]) & (np.arange(S.shape[1])[None, :] < truth[:, None])).sum(1)
    rank = higher + ties
    return {k: float((rank < k).mean()) for k in ks}
