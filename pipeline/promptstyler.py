"""PromptStyler (Cho, Nam, Kim, Yang, Kwak, "PromptStyler: Prompt-driven Style Generation for
Source-free Domain Generalization", ICCV 2023; seed 004): diverse styles synthesised in the joint
space from text alone, then a classifier trained on them without any image.

Style i is a word vector s_i for a pseudo-word S_i, injected as the token embedding of ``*`` in
"a S_i style of a" (style prompt P_i) and "a S_i style of a [class m]" (style-content prompt
P_i o P_m). With the text encoder T frozen, the K vectors are learned one after the other by

    L_style   = 1/(i-1) sum_{j<i} |<T(P_i), T(P_j)>|                 (unit vectors; 0 for i = 1)
    L_content = -1/N sum_m log softmax_n(z_imn)[m],  z_imn = <T(P_i o P_m), T(P_n^content)>
    L_prompt  = L_style + L_content,

P_n^content = "[class n]" in the paper; here T(P_n^content) is the prompt ensemble of class n over the
chosen template set (``prompts.templates``), normalize(mean_t normalize(T(t(class n)))) -- the same class
text zero-shot uses; the set ``classname`` ("{}") is the paper's prompt exactly. The K x N
style-content features T(P_i o P_m) are the classifier's training set (see :class:`pipeline.arcface.ArcFace`).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

PSEUDO_WORD = "*"  # one token in both CLIP's BPE and WordPiece; its embedding is replaced by s_i
PSEUDO_WORDS = (PSEUDO_WORD, "x", "sks")  # tried in order: SigLIP's tokenizer strips punctuation, so "*" is lost
STYLE_PROMPT = "a {} style of a"
STYLE_CONTENT_PROMPT = "a {} style of a {}"


def pseudo_word_positions(input_ids: torch.Tensor, pseudo_id: int) -> torch.Tensor:
    """Index of the first ``pseudo_id`` token in every row (each row must contain one)."""
    hit = input_ids == pseudo_id
    if not bool(hit.any(1).all()):
        raise ValueError(f"a prompt lost the pseudo-word {PSEUDO_WORD!r} in tokenisation")
    return hit.int().argmax(1)


@contextmanager
def inject(embedding: torch.nn.Module, positions: torch.Tensor, vector: torch.Tensor):
    """While active, the token-embedding layer's output at (row r, ``positions[r]``) is ``vector``;
    every other token embedding is the layer's own (a forward hook, removed on exit)."""
    rows = torch.arange(len(positions), device=positions.device)

    def hook(module, inputs, output):
        out = output.clone()
        out[rows, positions] = vector.to(out.dtype)
        return out

    handle = embedding.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def prompt_losses(style: torch.Tensor, previous: torch.Tensor, style_content: torch.Tensor,
                  content: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_style, L_content) of the module docstring from unit vectors: ``style`` [d], ``previous``
    [i-1, d] (already learned styles), ``style_content`` [N, d], ``content`` [N, d]."""
    l_style = (previous @ style).abs().mean() if len(previous) else style.new_zeros(())
    z = style_content @ content.T
    l_content = torch.nn.functional.cross_entropy(z, torch.arange(len(z), device=z.device))
    return l_style, l_content


def mean_abs_cos(F: np.ndarray) -> float:
    """Mean |cos| over distinct pairs of rows (style diversity; 0 = mutually orthogonal)."""
    F = F / np.linalg.norm(F, axis=1, keepdims=True)
    if len(F) < 2:
        return 0.0
    C = np.abs(F @ F.T)
    return float((C.sum() - np.trace(C)) / (len(F) * (len(F) - 1)))


@dataclass
class Styles:
    """Learned styles: word vectors [K, e], style features [K, d], style-content features
    [K, N, d] (unit norm), content features [N, d], per-style training log."""

    words: np.ndarray
    style_features: np.ndarray
    style_content: np.ndarray
    content: np.ndarray
    classes: list[str]
    log: pd.DataFrame

    def table(self) -> tuple[pd.DataFrame, np.ndarray]:
        """Long format (style, class) rows and their K*N features (``features/styles.parquet``)."""
        k, n = self.style_content.shape[:2]
        df = pd.DataFrame({"style": np.repeat(np.arange(k), n), "class": np.tile(self.classes, k)})
        return df, self.style_content.reshape(k * n, -1).astype(np.float32)

    def content_accuracy(self) -> float:
        """Share of style-content features whose nearest content feature is their own class."""
        pred = (self.style_content @ self.content.T).argmax(-1)
        return float((pred == np.arange(len(self.classes))).mean())


def content_features(encoder, names: list[str], templates: list[str]) -> torch.Tensor:
    """T(P_n^content) [N, d]: per class, the mean of the L2-normalised E_T(t(name)) over ``templates``,
    renormalised (CLIP's prompt ensembling)."""
    unit = torch.nn.functional.normalize
    texts = [t.format(n) for n in names for t in templates]
    step = getattr(encoder, "text_batch_size", 256)
    with torch.no_grad():
        f = torch.cat([unit(encoder.text_features(*encoder.tokenize(texts[i:i + step])).float(), dim=-1)
                       for i in range(0, len(texts), step)])
    return unit(f.reshape(len(names), len(templates), -1).mean(1), dim=-1)


def pseudo_word(encoder, prompt: str = STYLE_PROMPT) -> tuple[str, int]:
    """The first of :data:`PSEUDO_WORDS` the encoder's tokenizer keeps as one token inside ``prompt``."""
    for word in PSEUDO_WORDS:
        ids = encoder.tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(ids) == 1 and ids[0] in encoder.tokenize([prompt.format(word)])[0][0].tolist():
            return word, ids[0]
    raise ValueError(f"the tokenizer of model {encoder.name!r} keeps none of {list(PSEUDO_WORDS)} as one token: "
                     "PromptStyler has no pseudo-word to learn")


def learn_styles(encoder, classes: list[str], k: int = 80, iterations: int = 100, lr: float = 0.002,
                 momentum: float = 0.9, init_std: float = 0.02, seed: int = 0, progress: bool = True,
                 names: list[str] | None = None, templates: list[str] = ("{}",)) -> Styles:
    """Learn K style word vectors sequentially (SGD with momentum, ``iterations`` steps each, s_i
    initialised N(0, init_std^2)) with ``encoder`` (any pipeline encoder with ``tokenize``,
    ``text_features``, ``token_embedding``) frozen. One batch per step holds P_i and every P_i o P_m.
    ``names``: the classes as prompts write them (default: the folder names, underscores as spaces);
    ``templates``: the set the content features ensemble (:func:`content_features`)."""
    if k < 1 or iterations < 0:
        raise ValueError(f"promptstyler.k={k} must be >= 1 and promptstyler.iterations={iterations} >= 0")
    encoder.model.eval().requires_grad_(False)
    embedding = encoder.token_embedding()
    names = list(names) if names is not None else [c.replace("_", " ") for c in classes]
    word, pseudo_id = pseudo_word(encoder)
    prompts = [STYLE_PROMPT.format(word)] + [STYLE_CONTENT_PROMPT.format(word, c) for c in names]
    ids, mask = encoder.tokenize(prompts)
    positions = pseudo_word_positions(ids, pseudo_id)
    unit = torch.nn.functional.normalize
    content = content_features(encoder, names, list(templates))

    def features(word):
        with inject(embedding, positions, word):
            f = unit(encoder.text_features(ids, mask).float(), dim=-1)
        return f[0], f[1:]

    g = torch.Generator().manual_seed(seed)
    words, styles, style_contents, log = [], [], [], []
    for i in tqdm(range(k), desc="learn_styles", disable=not progress):
        t0 = time.perf_counter()
        word = (torch.randn(embedding.weight.shape[1], generator=g) * init_std).to(embedding.weight.device)
        word.requires_grad_(True)
        opt = torch.optim.SGD([word], lr=lr, momentum=momentum)
        previous = torch.stack(styles) if styles else content.new_zeros(0, content.shape[1])
        for step in range(iterations + 1):  # the last pass scores the final s_i: its features are kept
            style, style_content = features(word)
            l_style, l_content = prompt_losses(style, previous, style_content, content)
            if step == 0:
                first = (l_style.item(), l_content.item())
            if step == iterations:
                break
            opt.zero_grad()
            (l_style + l_content).backward()
            opt.step()
        words.append(word.detach())
        styles.append(style.detach())
        style_contents.append(style_content.detach())
        log.append({"style": i, "l_style_init": first[0], "l_content_init": first[1], "l_style": l_style.item(),
                    "l_content": l_content.item(), "seconds": time.perf_counter() - t0})
    return Styles(*(torch.stack(t).cpu().numpy() for t in (words, styles, style_contents)),
                  content.cpu().numpy(), list(classes), pd.DataFrame(log))
