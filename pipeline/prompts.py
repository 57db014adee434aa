"""Text prompts for domains and classes, and the text features built from them.

Kinds of rows in ``features/prompts.parquet``:

* ``domain``      – one description per domain, e.g. "an art painting" (Hémadou et al., ORASIS
                    2023, Table 1);
* ``domain_noun`` – "<description> of <frame(noun)>" over a list of dummy nouns unrelated to the task and
                    the object frames of the template set (:func:`noun_frames`): with the default
                    three templates the one frame "a {}", i.e. "an art painting of a goose";
* ``domain_avg``  – the class-averaged domain representation of that paper's §3(1), after Niu et
                    al. 2022 (Domain-Unified Prompt Representations): the mean of the raw
                    ``domain_noun`` embeddings of a domain;
* ``class``       – zero-shot class prompts, one per template x class, the class written as its prompt
                    name (Radford et al., 2021); :func:`class_text_weights` ensembles them per class.

So the template set (``prompts.templates``) reaches zero-shot (class prompts), PromptStyler (its content
prompts, :mod:`pipeline.promptstyler`) and the text operators that read the class-averaged descriptions.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

PROMPT_COLUMNS = ["text", "kind", "domain", "class"]


def with_article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def noun_frames(templates: list[str]) -> list[str]:
    """The object frame of each template, for the domain-noun prompts: a template reads "<depiction> of <frame>"
    ("a bad photo of the {}." -> "the {}"), and the depiction is what the domain description replaces; a
    template without " of " is all frame ("a cartoon {}." -> "a cartoon {}"). Final period dropped, repeats
    merged in order (CLIP's 80 templates give 35 frames, the default three the one frame "a {}")."""
    frames = []
    for t in templates:
        frame = t.rsplit(" of ", 1)[1] if " of " in t and "{}" in t.rsplit(" of ", 1)[1] else t
        frame = frame.strip().rstrip(".").strip()
        if frame not in frames:
            frames.append(frame)
    return frames


def in_frame(frame: str, noun: str) -> str:
    """``frame`` with ``noun`` in it, a leading "a" made "an" before a vowel ("a {}" + apple -> "an apple")."""
    return re.sub(r"^a (?=[aeiouAEIOU])", "an ", frame.format(noun))


def prompt_table(descriptions: dict[str, str], dummy_nouns: list[str], classes: list[str], templates: list[str],
                 class_names: dict[str, str] | None = None) -> pd.DataFrame:
    """Every prompt to embed (kinds ``domain``, ``domain_noun``, ``class``); ``class_names`` maps a class folder
    to the name its prompts use (default: the folder name)."""
    for t in templates:
        if "{}" not in t:
            raise ValueError(f"prompts.templates entry {t!r} needs a '{{}}' for the class name")
    names = class_names or {}
    frames = noun_frames(templates)
    rows = [{"text": d, "kind": "domain", "domain": dom, "class": None} for dom, d in descriptions.items()]
    rows += [{"text": f"{d} of {in_frame(f, n)}", "kind": "domain_noun", "domain": dom, "class": None}
             for dom, d in descriptions.items() for n in dummy_nouns for f in frames]
    rows += [{"text": t.format(names.get(c, c)), "kind": "class", "domain": None, "class": c}
             for c in classes for t in templates]
    return pd.DataFrame(rows, columns=PROMPT_COLUMNS)


def add_domain_averages(table: pd.DataFrame, emb: np.ndarray, descriptions: dict[str, str]
                        ) -> tuple[pd.DataFrame, np.ndarray]:
    """Append one ``domain_avg`` row per domain: mean of its ``domain_noun`` embeddings."""
    rows, vecs = [], []
    for dom, d in descriptions.items():
        mask = ((table["kind"] == "domain_noun") & (table["domain"] == dom)).to_numpy()
        if not mask.any():
            continue
        rows.append({"text": f"{d} of {{noun}} (mean of {int(mask.sum())})", "kind": "domain_avg", "domain": dom,
                     "class": None})
        vecs.append(emb[mask].mean(axis=0))
    if not rows:
        return table, emb
    return (pd.concat([table, pd.DataFrame(rows, columns=PROMPT_COLUMNS)], ignore_index=True),
            np.concatenate([emb, np.stack(vecs)]).astype(np.float32))


DESCRIPTION_KINDS = ("domain", "domain_avg")  # a domain's description; the class-averaged one


def domain_text_vectors(table: pd.DataFrame, emb: np.ndarray, kind: str) -> dict[str, np.ndarray]:
    """{domain: E_T(t_domain)} for ``kind`` in :data:`DESCRIPTION_KINDS`."""
    sel = (table["kind"] == kind).to_numpy()
    return {d: emb[i] for d, i in zip(table["domain"][sel], np.flatnonzero(sel))}


def description_vectors(table: pd.DataFrame, emb: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """{kind: {domain: E_T(t_domain)}} for every kind of :data:`DESCRIPTION_KINDS`."""
    return {kind: domain_text_vectors(table, emb, kind) for kind in DESCRIPTION_KINDS}


def class_text_weights(table: pd.DataFrame, emb: np.ndarray, classes: list[str]) -> np.ndarray:
    """Zero-shot weights [n_classes, d]: per class, mean of L2-normalised template embeddings,
    renormalised (CLIP's prompt ensembling, Radford et al. 2021, §3.1.4)."""
    w = []
    for c in classes:
        sel = ((table["kind"] == "class") & (table["class"] == c)).to_numpy()
        if not sel.any():
            raise ValueError(f"no class prompt for class {c!r} in the prompt store")
        e = emb[sel] / np.linalg.norm(emb[sel], axis=1, keepdims=True)
        m = e.mean(axis=0)
        w.append(m / np.linalg.norm(m))
    return np.stack(w).astype(np.float32)
