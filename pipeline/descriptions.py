"""How a domain should be described in text (Hémadou et al., ORASIS 2023, question 1): searched and learned
descriptions for the translation z = x + alpha (E_T(t_src) - E_T(t_x)).

* **Search** (``translate_searched``): each domain has a pool of candidate descriptions
  (``descriptions.candidates``, its default description always included). Each candidate t is scored by
  the seed's Table 1 measure on the domain's unlabelled train-split images D,

      Sim(t, D) = 1/|D| sum_{x in D} cos(E_T(t), E_I(x)),

  and by its specificity Sim(t, D) - mean_{D' != D} Sim(t, D'). ``descriptions.select`` picks one of the two
  (label-free: it reads images, never a label). Each candidate's translation accuracy is reported beside: the
  leave-one-domain-out accuracy on that domain as the target with the candidate as its description, the probe
  and alpha chosen by training-domain validation, mean over the evaluation's trials -- an analysis that reads the
  domain's own test labels, so it never selects.
* **Learning** (``translate_learned``): a pseudo-word vector s_D injected as the token embedding of ``*`` in
  "a * of a" (PromptStyler's injection, Cho et al. ICCV 2023), the text encoder frozen, maximising

      Sim(t(s_D), D) - lambda * mean_{D' != D} Sim(t(s_D), D')

  with Adam over the unlabelled train-split images of every domain (lambda = ``descriptions.learn.contrast``).
  Every domain's train split is read, the target's included (transductive, unlabelled): no label is read.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .operators.base import l2_normalize

LEARNED_PROMPT = "a {} of a"


def domain_means(X: np.ndarray, dom: np.ndarray, domains: list[str]) -> np.ndarray:
    """mu_D = mean_{x in D} E_I(x) / ||E_I(x)||, one row per domain: Sim(t, D) = t_hat . mu_D."""
    U = l2_normalize(np.asarray(X, np.float64))
    return np.stack([U[dom == d].mean(0) for d in domains])


def learn_descriptions(encoder, means: np.ndarray, domains: list[str], steps: int = 200, lr: float = 0.01,
                       contrast: float = 0.5, init_std: float = 0.02, seed: int = 0, progress: bool = True
                       ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Per domain D, the pseudo-word vector s_D maximising Sim(t(s_D), D) - contrast * mean_{D' != D} Sim(t(s_D), D')
    with the encoder frozen (Adam, ``steps`` steps, s_D ~ N(0, init_std^2)); ``means``: :func:`domain_means`.
    Returns (word vectors [domains, d_token], E_T of each learned prompt [domains, d], a log with the similarity
    to the own domain and to the others at every step)."""
    from .promptstyler import inject, pseudo_word, pseudo_word_positions

    encoder.model.eval().requires_grad_(False)
    embedding = encoder.token_embedding()
    word, pseudo_id = pseudo_word(encoder, LEARNED_PROMPT)
    ids, mask = encoder.tokenize([LEARNED_PROMPT.format(word)])
    positions = pseudo_word_positions(ids, pseudo_id)
    mu = torch.as_tensor(means, dtype=torch.float32, device=ids.device)
    g = torch.Generator().manual_seed(seed)
    words, feats, log = [], [], []
    for i, d in enumerate(tqdm(domains, desc="learn descriptions", disable=not progress)):
        t0 = time.perf_counter()
        s = (torch.randn(embedding.weight.shape[1], generator=g) * init_std).to(embedding.weight.device)
        s.requires_grad_(True)
        opt = torch.optim.Adam([s], lr=lr)
        others = [j for j in range(len(domains)) if j != i]
        for step in range(steps + 1):  # the last pass scores the final s_D
            with inject(embedding, positions, s):
                raw = encoder.text_features(ids, mask).float()[0]
            sims = mu @ torch.nn.functional.normalize(raw, dim=-1)
            own, rest = sims[i], sims[others].mean() if others else sims.new_zeros(())
            log.append({"domain": d, "step": step, "sim_own": own.item(), "sim_others": rest.item(),
                        "objective": (own - contrast * rest).item()})
            if step == steps:
                break
            opt.zero_grad()
            (-(own - contrast * rest)).backward()
            opt.step()
        words.append(s.detach().cpu())
        feats.append(raw.detach().cpu())  # E_T as the other descriptions store it (unnormalised)
        log[-1]["seconds"] = time.perf_counter() - t0
    return torch.stack(words).numpy(), torch.stack(feats).numpy().astype(np.float32), pd.DataFrame(log)
