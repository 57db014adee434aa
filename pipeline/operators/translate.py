"""Text-guided translation (Hémadou, Vorobieva, Kijak, Jurie, "Généralisation de domaine par translation
dans l'espace CLIP", ORASIS 2023, §2): an image x of domain D_x is moved toward the source domain(s)

    z = n_b(E_I(x)) + alpha * (n_b(E_T(t_src)) - n_b(E_T(t_x))),   then  z <- n_a(z),

n_b / n_a optional L2 normalisations (``translate.normalize_before`` / ``normalize_after``); with several
sources E_T(t_src) is the mean of their descriptions. Source rows have t_x = t_src, so on training rows
only the normalisation acts. ``none`` is the same transform with alpha = 0, so that the comparison
isolates the shift; ``translate_avg`` uses the class-averaged descriptions (after Niu et al. 2022);
``translate_searched`` / ``translate_learned`` the searched and learned ones (:mod:`pipeline.descriptions`).
"""
from __future__ import annotations

import numpy as np

from . import OPERATORS
from .base import Operator, l2_normalize


class TextTranslation(Operator):
    hyper = {"alpha": 1.0, "normalize_before": False, "normalize_after": False}
    scope, uses, params_key = "sources", "text", "translate"
    kind = "domain"  # which description vectors: domain or domain_avg

    def _text(self, domain: str) -> np.ndarray:
        vectors = (self.text or {}).get(self.kind, {})
        if domain not in vectors:
            raise KeyError(f"no {self.kind} text description for domain {domain!r}")
        t = np.asarray(vectors[domain], np.float64)
        return l2_normalize(t) if self.normalize_before else t

    def fit(self, X=None, domains=None, sources=()):
        if not len(sources):
            raise ValueError("TextTranslation.fit needs the source domains")
        self.sources_ = list(sources)
        self.t_src_ = np.mean([self._text(d) for d in self.sources_], axis=0)
        return self

    def shift(self, domain: str) -> np.ndarray:
        """alpha * (t_src - t_domain)."""
        return self.alpha * (self.t_src_ - self._text(domain))

    def transform(self, X: np.ndarray, domains) -> np.ndarray:
        X, domains = np.asarray(X, np.float64), np.asarray(domains)
        if len(domains) != len(X):
            raise ValueError(f"{len(X)} rows but {len(domains)} domain labels")
        Z = l2_normalize(X) if self.normalize_before else X.copy()
        for d in np.unique(domains):
            Z[domains == d] += self.shift(d)
        return (l2_normalize(Z) if self.normalize_after else Z).astype(np.float32)


@OPERATORS.register("none")
class NoShift(TextTranslation):
    """The identity up to the translation's normalisations (alpha fixed at 0)."""

    hyper = {"normalize_before": False, "normalize_after": False}
    alpha = 0.0
    text_kinds = ()  # reads no description: its cells stay valid when the prompts change

    def fit(self, X=None, domains=None, sources=()):
        self.sources_ = list(sources)
        return self

    def shift(self, domain: str) -> float:
        return 0.0


@OPERATORS.register("translate_single")
class TranslateSingle(TextTranslation):
    kind, text_kinds = "domain", ("domain",)


@OPERATORS.register("translate_avg")
class TranslateAverage(TextTranslation):
    kind, text_kinds = "domain_avg", ("domain_avg",)


@OPERATORS.register("translate_searched")
class TranslateSearched(TextTranslation):
    """Each domain's description chosen from its candidate pool by Sim(t, D) (stage search_descriptions)."""

    kind, text_kinds = "domain_searched", ("domain_searched",)


@OPERATORS.register("translate_learned")
class TranslateLearned(TextTranslation):
    """Each domain's learned pseudo-word description "a * of a" (stage learn_descriptions)."""

    kind, text_kinds = "domain_learned", ("domain_learned",)
