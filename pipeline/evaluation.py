"""The evaluation grid on cached features: zero-shot, linear probes per source, translation.

Protocols (PACS, Li et al. ICCV 2017), always scored on the *test split* of the target domain:

* ``zeroshot``      – CLIP zero-shot, no training images;
* ``in_domain``     – probe trained on the train split of the same domain (reference level);
* ``single_source`` – probe trained on one domain, tested on each of the 3 others (12 pairs);
* ``lodo``          – leave-one-domain-out: trained on the other 3 domains.

Each probe (logistic regression; optionally linear SVM and a torch softmax layer) is scored
after each feature-space operator in ``operators``: ``none``; text-guided translation with single
(``translate_single``) or class-averaged (``translate_avg``) descriptions; ``text_removal``
(text only); ``center``, ``whiten``, ``coral``, ``selective_whiten``, which are fit on the
unlabelled *train split* of the source and target domains and never on test images. ``none``
applies the same normalisation as the translation (alpha = 0), so that comparison isolates the shift.
"""
from __future__ import annotations

import hashlib
import logging

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from .classifiers import ADAPTERS, PROBES, ZeroShotClassifier, fit_probes
from .coverage import setting_gaps, warn_setting
from .metrics import accuracy
from .operators import CORAL, MeanCentering, SelectiveWhitening, TextSubspaceRemoval, TextTranslation, Whitening
from .params import Classifier, Operators, Translate

log = logging.getLogger(__name__)
ACCURACY_COLUMNS = ["method", "protocol", "classifier", "operator", "source", "target", "n_test", "accuracy",
                    "missing_classes"]
PER_DOMAIN = ("center", "whiten")  # operators whose map of a domain depends on that domain's rows only
PER_SOURCE = ("coral",)  # ... on that domain's and the source domains' rows only
DESCRIPTION_KINDS = {"translate_single": "domain", "translate_avg": "domain_avg"}
OPERATORS = ("none", "translate_single", "translate_avg", "text_removal", "center", "whiten", "coral",
             "selective_whiten")


def fit_operator(name: str, X: np.ndarray, domains: np.ndarray, sources: list[str],
                 domain_text: dict[str, dict[str, np.ndarray]], operators: Operators = Operators(),
                 translate: Translate = Translate()):
    """A fitted operator with ``transform(X, domains)``; ``X`` / ``domains`` are the unlabelled
    rows it may use (train split of the sources and the target)."""
    if name == "none" or name in DESCRIPTION_KINDS:
        kind, a = ("domain", 0.0) if name == "none" else (DESCRIPTION_KINDS[name], translate.alpha)
        return TextTranslation(domain_text[kind], a, translate.normalize_before,
                               translate.normalize_after).fit(source_domains=sources)
    if name == "text_removal":
        return TextSubspaceRemoval(domain_text["domain"]).fit()
    if name == "coral":
        return CORAL(ridge=operators.coral_ridge).fit(X, domains, source_domains=sources)
    op = {"center": MeanCentering(), "whiten": Whitening(operators.whiten_shrinkage),
          "selective_whiten": SelectiveWhitening(min(operators.n_directions, X.shape[1]),
                                                 operators.whiten_shrinkage)}.get(name)
    if op is None:
        raise ValueError(f"operators: unknown {name!r}; choose from {list(OPERATORS)}")
    return op.fit(X, domains)


def shared_fit_key(op: str, sources: list[str], target: str) -> tuple:
    """Pairs whose operator fits are identical share one: a ``PER_DOMAIN`` operator fit once on every
    train row maps each domain as a fit on (sources + target) would, and so does a ``PER_SOURCE``
    one for every target of the same sources. Keys of length 3 are fit per pair."""
    return (op,) if op in PER_DOMAIN else (op, tuple(sources)) if op in PER_SOURCE else (op, tuple(sources), target)


def protocols(domains: list[str]) -> list[tuple[str, list[str], str]]:
    """(protocol, source domains, target domain) for every evaluated setting."""
    out = [("in_domain", [d], d) for d in domains]
    out += [("single_source", [s], t) for s in domains for t in domains if s != t]
    out += [("lodo", [s for s in domains if s != t], t) for t in domains]
    return out


def image_free_rows(images: pd.DataFrame, X: np.ndarray, clf, domains: list[str], method: str,
                    classifier: str, classes: list[str]) -> list[tuple]:
    """Accuracy rows (protocol ``zeroshot``: trained on no image) of a fitted classifier predicting
    class indices, on the test split of every domain."""
    test = (images["split"] == "test").to_numpy()
    dom, y = images["domain"].to_numpy(), images["label"].to_numpy()
    return [(method, "zeroshot", classifier, "none", "-", t, int(m.sum()), accuracy(y[m], clf.predict(X[m])),
             setting_gaps(np.arange(len(classes)), y[m], classes))
            for t in domains for m in [test & (dom == t)]]


def evaluate_grid(images: pd.DataFrame, X: np.ndarray, domain_text: dict[str, dict[str, np.ndarray]],
                  class_weights: np.ndarray, domains: list[str], classifier: Classifier = Classifier(),
                  operators: Operators = Operators(), translate: Translate = Translate(),
                  classes: list[str] | None = None) -> pd.DataFrame:
    """Long-format accuracy table (``ACCURACY_COLUMNS``).

    ``images`` has columns domain, label, split aligned with ``X``; ``domain_text`` maps a
    description kind (``domain`` / ``domain_avg``) to {domain: E_T vector}; ``classes`` names the
    labels (default: their indices). Probes whose training matrices are identical (one source under
    every operator) are fit once; distinct fits run in ``classifier.n_jobs`` processes.
    ``classifier.probes`` names entries of :data:`pipeline.classifiers.PROBES` or ``dann``; DANN
    learns its own alignment from the unlabelled target train split, so it is scored on raw
    features only (operator ``none``; single-source and LODO).
    """
    probes, n_jobs, seed = tuple(classifier.probes), classifier.n_jobs, classifier.seed
    C, max_iter, standardize, dann = classifier.C, classifier.max_iter, classifier.standardize, classifier.dann.model_dump()
    classes = classes or [str(i) for i in range(len(class_weights))]
    unknown = set(probes) - set(PROBES) - set(ADAPTERS)
    if unknown:
        raise ValueError(f"classifier.probes: unknown {sorted(unknown)}; choose from {sorted({*PROBES, *ADAPTERS})}")
    dom = images["domain"].to_numpy()
    y = images["label"].to_numpy()
    train = (images["split"] == "train").to_numpy()
    test = (images["split"] == "test").to_numpy()
    rows = []

    rows += image_free_rows(images, X, ZeroShotClassifier(class_weights).fit(), domains, "zeroshot", "zeroshot", classes)

    unknown = set(operators.names) - set(OPERATORS)
    if unknown:
        raise ValueError(f"operators.names: unknown {sorted(unknown)}; choose from {list(OPERATORS)}")
    settings = [(p, s, t, train & np.isin(dom, s), test & (dom == t)) for p, s, t in protocols(domains)]
    for p, s, t, tr, te in settings:
        if not tr.any() or not te.any():
            log.warning("evaluate: %s %s -> %s has no %s rows; it is left out (see reports/prepare.json)", p,
                        "+".join(s), t, "train" if not tr.any() else "test")
    settings = [st for st in settings if st[3].any() and st[4].any()]
    gaps = {(p, tuple(s), t): setting_gaps(y[tr], y[te], classes) for p, s, t, tr, te in settings}
    for (p, s, t), g in gaps.items():
        warn_setting("evaluate", p, list(s), t, g)
    adapters = [probe for probe in probes if probe in ADAPTERS]  # only they need the raw-feature sets
    linear = [probe for probe in probes if probe in PROBES]
    adapt = {(p, "+".join(s), t): (X[tr], y[tr], X[train & (dom == t)], X[te], y[te])
             for p, s, t, tr, te in settings if p != "in_domain" and adapters}
    jobs, labels = [], []  # scored settings; (probe, train-set key(s)) of each fit, in dispatch order

    def fits():
        """Batched adapter fits first (the longest jobs; n_jobs batches each), then one job per distinct
        train set fitting every linear probe on it (:func:`fit_probes`), yielded as soon as its operator
        is fit so workers start while the main process fits the next operators."""
        n = max(n_jobs, 1)
        for probe in adapters:
            for keys in [list(adapt)[i::n] for i in range(n) if list(adapt)[i::n]]:
                labels.append((probe, keys))
                yield delayed(ADAPTERS[probe](seed=seed, **dann).fit_many)([adapt[k][:3] for k in keys])
        seen, ops = set(), {}
        for protocol, sources, target, tr, te in settings:
            unlabeled = train & np.isin(dom, [*sources, target])
            (Xs, ds, ys), (Xt, dt, yt) = (X[tr], dom[tr], y[tr]), (X[te], dom[te], y[te])  # once per setting
            for op in operators.names:
                if protocol == "in_domain" and op != "none":
                    continue  # operators align domains; there is nothing to align in-domain
                fit_key = shared_fit_key(op, sources, target)
                if fit_key not in ops:
                    rows_ = train if len(fit_key) < 3 else unlabeled
                    ops[fit_key] = fit_operator(op, X[rows_], dom[rows_], sources, domain_text, operators, translate)
                tt = ops[fit_key]
                Xtr = tt.transform(Xs, ds)
                digest = hashlib.sha256(memoryview(np.ascontiguousarray(Xtr)).cast("B"))
                digest.update(ys.tobytes())
                key = digest.hexdigest()
                jobs.append((protocol, sources, target, op, key, tt.transform(Xt, dt), yt))
                if key in seen:  # one source under several operators can give the same training matrix
                    continue
                seen.add(key)
                if linear:
                    labels.append(("probes", key))
                    yield delayed(fit_probes)(linear, Xtr, ys, C, max_iter, seed, standardize)

    clfs = {}
    with threadpool_limits(1 if n_jobs != 1 else None):  # the workers take the cores; BLAS threads would spin
        fitted = list(zip(labels, Parallel(n_jobs=n_jobs)(fits())))
    for (probe, k), clf in fitted:  # adapters: a batch of train-set keys; linear probes: {probe: clf} of one key
        clfs.update(zip([(probe, key) for key in k], clf) if probe in ADAPTERS else
                    [((name, k), c) for name, c in clf.items()])
    for probe in probes:
        if probe in ADAPTERS:
            for key, (*_, Xte, yte) in adapt.items():
                rows.append((probe, key[0], probe, "none", key[1], key[2], len(yte),
                             accuracy(yte, clfs[probe, key].predict(Xte)), gaps[key[0], tuple(key[1].split("+")), key[2]]))
            continue
        for protocol, sources, target, op, key, Xte, yte in jobs:
            method = probe if op == "none" else f"{probe}+{op}"
            rows.append((method, protocol, probe, op, "+".join(sources), target, len(yte),
                         accuracy(yte, clfs[probe, key].predict(Xte)), gaps[protocol, tuple(sources), target]))
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)


def headline_metrics(acc: pd.DataFrame) -> dict:
    """Mean accuracy per protocol and method (plus per-target for zero-shot and LODO)."""
    out: dict = {}
    for protocol, g in acc.groupby("protocol", sort=False):
        block = {m: round(float(v), 4) for m, v in g.groupby("method", sort=False)["accuracy"].mean().items()}
        if protocol in ("zeroshot", "lodo"):
            for m, gm in g.groupby("method", sort=False):
                block[f"{m}_per_target"] = {t: round(float(a), 4) for t, a in zip(gm["target"], gm["accuracy"])}
        out[protocol] = block
    return out
