"""The evaluation grid on a synthetic 4-domain world where text encodes each domain's shift."""
import numpy as np
import pandas as pd
import pytest

from pipeline.evaluation import ACCURACY_COLUMNS, evaluate_grid, headline_metrics, protocols
from pipeline.params import Classifier, Operators, Translate

DOMAINS = ["photo", "art_painting", "cartoon", "sketch"]
TEXT_OPS = ("none", "translate_single", "translate_avg")


def grid(images, X, text, W, probes=("logreg",), operators=TEXT_OPS, alpha=1.0, n_directions=32, **clf):
    """evaluate_grid with typed sections built from a few keywords (one process, as in a unit test)."""
    return evaluate_grid(images, X, text, W, DOMAINS, Classifier(probes=list(probes), n_jobs=1, **clf),
                         Operators(names=list(operators), n_directions=n_directions), Translate(alpha=alpha))


def synthetic(seed=0, n=40, d=24, k=5):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 2.0, (k, d))
    shifts = {dom: 2.5 * (means[i % k] - means[(i + 1) % k]) + rng.normal(0, 0.5, d) for i, dom in enumerate(DOMAINS)}
    shifts["photo"] = np.zeros(d)
    base = rng.normal(0, 1.0, d)
    rows, X = [], []
    for dom in DOMAINS:
        y = np.repeat(np.arange(k), n)
        X.append(means[y] + rng.normal(0, 1.0, (len(y), d)) + shifts[dom])
        split = np.where(np.arange(len(y)) % 5 == 0, "test", "train")
        rows.append(pd.DataFrame({"domain": dom, "label": y, "split": split}))
    text = {dom: base + s for dom, s in shifts.items()}
    images = pd.concat(rows, ignore_index=True)
    class_w = means / np.linalg.norm(means, axis=1, keepdims=True)
    return images, np.concatenate(X).astype(np.float32), {"domain": text, "domain_avg": text}, class_w


def test_protocol_list():
    p = protocols(DOMAINS)
    assert sum(1 for x in p if x[0] == "single_source") == 12
    assert ("lodo", ["art_painting", "cartoon", "sketch"], "photo") in p


def test_grid_shape_and_translation_gain():
    images, X, text, W = synthetic()
    acc = grid(images, X, text, W, C=1.0)
    assert list(acc.columns) == ACCURACY_COLUMNS
    counts = acc.groupby("protocol").size().to_dict()
    assert counts == {"zeroshot": 4, "in_domain": 4, "single_source": 36, "lodo": 12}
    assert (acc["missing_classes"] == "").all()
    assert (acc["n_test"] == 40).all()
    ss = acc[acc.protocol == "single_source"].groupby("method")["accuracy"].mean()
    indom = acc[acc.protocol == "in_domain"]["accuracy"].mean()
    # text encodes the exact domain shifts: translation recovers (almost) in-domain accuracy
    assert ss["logreg"] < indom - 0.2
    assert ss["logreg+translate_single"] > indom - 0.05
    m = headline_metrics(acc)
    assert m["single_source"]["logreg+translate_single"] == pytest.approx(round(ss["logreg+translate_single"], 4))
    assert set(m["lodo"]["logreg_per_target"]) == set(DOMAINS)
    assert m["zeroshot"]["zeroshot_per_target"]["photo"] > 0.8  # unshifted domain, true class directions


def test_source_training_rows_are_not_shifted():
    """In single-source, operators none/translate share one classifier: train features are identical."""
    images, X, text, W = synthetic(seed=1)
    a = grid(images, X, text, W, alpha=0.0)
    ss = a[a.protocol == "single_source"].pivot_table(index=["source", "target"], columns="operator", values="accuracy")
    # alpha = 0 makes every operator the identity: all columns equal
    assert (ss.nunique(axis=1) == 1).all()


def test_svm_and_softmax_rows_join_the_grid():
    images, X, text, W = synthetic(seed=2)
    acc = grid(images, X, text, W, probes=("logreg", "svm", "softmax"))
    assert set(acc["classifier"]) == {"zeroshot", "logreg", "svm", "softmax"}
    assert {"svm+translate_single", "softmax+translate_avg"} <= set(acc["method"])
    indom = acc[acc.protocol == "in_domain"].groupby("classifier")["accuracy"].mean()
    assert (indom > 0.8).all()
    # softmax minimises logreg's objective: their accuracies agree closely
    ss = acc[acc.protocol == "single_source"].groupby("classifier")["accuracy"].mean()
    assert ss["softmax"] == pytest.approx(ss["logreg"], abs=0.02)
    with pytest.raises(ValueError, match="classifier.probes"):
        grid(images, X, text, W, probes=("knn",))


def test_every_operator_in_the_grid_and_coral_helps_on_second_order_shift():
    """Domains differ by a per-domain scale and offset (first- and second-order shift): centering,
    whitening and CORAL undo it exactly, so they must beat no operator."""
    rng = np.random.default_rng(5)
    d, k, n = 12, 4, 80
    means = rng.normal(0, 2.0, (k, d))
    rows, X = [], []
    for i, dom in enumerate(DOMAINS):
        scale = [1.0, 0.3, 3.0, 0.5][i]
        y = np.repeat(np.arange(k), n)
        X.append(scale * (means[y] + rng.normal(0, 0.7, (len(y), d))) + (0 if i == 0 else rng.normal(0, 4, d)))
        rows.append(pd.DataFrame({"domain": dom, "label": y, "split": np.where(np.arange(len(y)) % 4 == 0, "test", "train")}))
    images, X = pd.concat(rows, ignore_index=True), np.concatenate(X)
    text = {kind: {dom: rng.normal(size=d) for dom in DOMAINS} for kind in ("domain", "domain_avg")}
    from pipeline.evaluation import OPERATORS
    acc = grid(images, X, text, np.eye(k, d), operators=OPERATORS, n_directions=4)
    ss = acc[acc.protocol == "single_source"].groupby("operator")["accuracy"].mean()
    assert set(ss.index) == set(OPERATORS)
    for op in ("center", "coral", "whiten"):
        assert ss[op] > ss["none"] + 0.1, op
    with pytest.raises(ValueError, match="operators"):
        grid(images, X, text, np.eye(k, d), operators=("none", "magic"))


def test_dann_rows_join_the_grid_on_cross_domain_protocols():
    images, X, text, W = synthetic(seed=3)
    acc = grid(images, X, text, W, probes=("logreg", "dann"), operators=("none", "coral"), dann={"steps": 100})
    d = acc[acc.classifier == "dann"]
    assert d.groupby("protocol").size().to_dict() == {"single_source": 12, "lodo": 4}
    assert set(d["operator"]) == {"none"} and set(d["method"]) == {"dann"}
    assert {"logreg+coral"} <= set(acc["method"])
    with pytest.raises(ValueError, match="classifier.dann.epochs: unknown key"):
        from pipeline.params import parse_params
        parse_params({"classifier": {"dann": {"epochs": 3}}})


def test_shared_operator_fits_equal_per_pair_fits():
    """The grid fits center / whiten once and CORAL once per source set, on every train row: each
    pair's rows must map exactly as under a fit on that pair's (sources + target) rows alone."""
    from pipeline.evaluation import fit_operator, shared_fit_key

    images, X, text, _ = synthetic()
    dom, train = images["domain"].to_numpy(), (images["split"] == "train").to_numpy()
    for protocol, sources, target in protocols(DOMAINS):
        if protocol == "in_domain":
            continue
        pair = train & np.isin(dom, [*sources, target])
        for op in ("center", "whiten", "coral", "selective_whiten"):
            shared = len(shared_fit_key(op, sources, target)) < 3
            assert shared == (op != "selective_whiten")
            if not shared:
                continue
            a = fit_operator(op, X[train], dom[train], sources, text)
            b = fit_operator(op, X[pair], dom[pair], sources, text)
            np.testing.assert_array_equal(a.transform(X[pair], dom[pair]), b.transform(X[pair], dom[pair]))
