"""Synthetic PACS-shaped feature worlds with known ground truth, for tests and benchmarks.

A world has K classes and the 4 PACS domains; each image feature is

    x = mu_y + s_d + L eps,      eps ~ N(0, I)

with class means mu_y, a per-domain shift s_d (s_photo = 0) and noise whose covariance L L^T has a
power-law spectrum (as CLIP features do). The domain text vectors encode the shift exactly
(E_T(t_d) = b + s_d), so text-guided translation can undo it; class text vectors are the normalised
class means, so zero-shot works on the unshifted domain.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .data import PACS_DOMAINS

PACS_SIZES = {"photo": 1670, "art_painting": 2048, "cartoon": 2344, "sketch": 3929}


def pacs_world(sizes: dict[str, int] | None = None, dim: int = 512, n_classes: int = 7, seed: int = 0,
               class_sep: float = 2.0, shift: float = 2.5, spectrum_decay: float = 1.0, test_every: int = 5):
    """(images, X, domain_text, class_weights).

    ``images`` has columns domain, label, split (every ``test_every``-th row of a domain is test);
    ``domain_text`` maps every description kind to {domain: vector}: domain / domain_avg the domain's
    shift direction, domain_searched / domain_learned the same with a little noise (other descriptions
    of the same domain, as stages search_descriptions / learn_descriptions write them). ``shift``
    scales how far each domain's shift moves class means toward other classes' (so a source-only
    probe fails); ``spectrum_decay`` is the exponent of the noise eigenvalue power law.
    """
    sizes = sizes or PACS_SIZES
    domains = [d for d in PACS_DOMAINS if d in sizes] + [d for d in sizes if d not in PACS_DOMAINS]
    rng = np.random.default_rng(seed)
    means = rng.normal(0, class_sep, (n_classes, dim))
    shifts = {d: shift * (means[i % n_classes] - means[(i + 1) % n_classes]) + rng.normal(0, 0.5, dim)
              for i, d in enumerate(domains)}
    shifts[domains[0]] = np.zeros(dim)
    eig = np.arange(1, dim + 1, dtype=np.float64) ** -spectrum_decay
    eig *= dim / eig.sum()
    basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    L = basis * np.sqrt(eig)
    base = rng.normal(0, 1.0, dim)
    frames, feats = [], []
    for d in domains:
        n = sizes[d]
        y = np.arange(n) % n_classes
        feats.append(means[y] + shifts[d] + rng.normal(size=(n, dim)) @ L.T)
        frames.append(pd.DataFrame({"domain": d, "label": y,
                                    "split": np.where(np.arange(n) % test_every == 0, "test", "train")}))
    text = {d: base + s for d, s in shifts.items()}
    class_w = means / np.linalg.norm(means, axis=1, keepdims=True)
    other = {kind: {d: v + rng.normal(0, 0.1, dim) for d, v in text.items()} for kind in ("domain_searched", "domain_learned")}
    return (pd.concat(frames, ignore_index=True), np.concatenate(feats).astype(np.float32),
            {"domain": text, "domain_avg": text, **other}, class_w)
