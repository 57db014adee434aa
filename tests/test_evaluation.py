"""The evaluation: protocols, operators, model selection without target labels, trials, the cell cache,
and adding an operator as one class plus one registry entry."""
import json

import numpy as np
import pandas as pd
import pytest

from pipeline.cellcache import CellCache
from pipeline.errors import ParamsError
from pipeline.evaluation import ACCURACY_COLUMNS, evaluate, protocols
from pipeline.imagefree.zeroshot import ZeroShotClassifier
from pipeline.operators import OPERATORS, Operator
from pipeline.params import parse_params
from pipeline.tables import all_metrics, headline, mean_se, summarize, validation_text

DOMAINS = ["photo", "art_painting", "cartoon", "sketch"]


def with_ids(images: pd.DataFrame) -> pd.DataFrame:
    """Content ids and class names, as a real image store has them."""
    return images.assign(image_id=[f"{i:064x}" for i in range(len(images))], **{"class": images["label"].astype(str)})


def synthetic(seed=0, n=40, d=24, k=5):
    """Each domain = class means + a domain shift; the text vectors encode the shift exactly."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 2.0, (k, d))
    shifts = {dom: 2.5 * (means[i % k] - means[(i + 1) % k]) + rng.normal(0, 0.5, d) for i, dom in enumerate(DOMAINS)}
    shifts["photo"] = np.zeros(d)
    base = rng.normal(0, 1.0, d)
    rows, X = [], []
    for dom in DOMAINS:
        y = np.repeat(np.arange(k), n)
        X.append(means[y] + rng.normal(0, 1.0, (len(y), d)) + shifts[dom])
        rows.append(pd.DataFrame({"domain": dom, "label": y, "split": np.where(np.arange(len(y)) % 5 == 0, "test", "train")}))
    text = {dom: base + s for dom, s in shifts.items()}
    images = with_ids(pd.concat(rows, ignore_index=True))
    class_w = means / np.linalg.norm(means, axis=1, keepdims=True)
    return images, np.concatenate(X).astype(np.float32), {"domain": text, "domain_avg": text}, class_w


def params(**sections):
    base = {"classifier": {"probes": ["logreg"], "C": 1.0, "n_jobs": 1},
            "operators": {"names": ["none", "translate_single", "translate_avg"]},
            "translate": {"alpha": 1.0}, "evaluation": {"trials": 1, "selection": ["train_val", "oracle"]}}
    for k, v in sections.items():
        base[k] = {**base.get(k, {}), **v}
    return parse_params(base)


def run(images, X, text, p, class_w=None, cache=None, domains=DOMAINS, fixed_test=False):
    image_free = {"zeroshot": ZeroShotClassifier(class_w).fit()} if class_w is not None else {}
    classes = sorted(images["class"].unique(), key=int)
    return evaluate(images, X, text, domains, classes, p, image_free, cache or CellCache(None), fixed_test)


def test_protocol_list():
    p = protocols(DOMAINS)
    assert sum(1 for x in p if x[0] == "single_source") == 12
    assert ("lodo", ["art_painting", "cartoon", "sketch"], "photo") in p


def test_grid_shape_and_translation_gain():
    images, X, text, W = synthetic()
    acc, info = run(images, X, text, params(), W)
    assert list(acc.columns) == ACCURACY_COLUMNS
    tv = acc[acc.selection.isin(["train_val", "-"])]
    assert tv.groupby("protocol").size().to_dict() == {"zeroshot": 4, "in_domain": 4, "single_source": 36, "lodo": 12}
    assert (acc["missing_classes"] == "").all() and info["cells"] == 4 + 12 * 3 + 4 * 3
    ss = tv[tv.protocol == "single_source"].groupby("method")["accuracy"].mean()
    indom = tv[tv.protocol == "in_domain"]["accuracy"].mean()
    # text encodes the exact domain shifts: translation recovers (almost) in-domain accuracy
    assert ss["logreg"] < indom - 0.2
    assert ss["logreg+translate_single"] > indom - 0.05
    assert tv[(tv.protocol == "zeroshot") & (tv.target == "photo")]["accuracy"].iloc[0] > 0.8


def test_every_operator_and_probe_and_coral_helps_on_second_order_shift():
    """Domains differ by a per-domain scale and offset: centering, whitening and CORAL undo it."""
    rng = np.random.default_rng(5)
    d, k, n = 12, 4, 80
    means = rng.normal(0, 2.0, (k, d))
    rows, X = [], []
    for i, dom in enumerate(DOMAINS):
        scale = [1.0, 0.3, 3.0, 0.5][i]
        y = np.repeat(np.arange(k), n)
        X.append(scale * (means[y] + rng.normal(0, 0.7, (len(y), d))) + (0 if i == 0 else rng.normal(0, 4, d)))
        rows.append(pd.DataFrame({"domain": dom, "label": y, "split": "train"}))
    images, X = with_ids(pd.concat(rows, ignore_index=True)), np.concatenate(X)
    kinds = ("domain", "domain_avg", "domain_searched", "domain_learned")
    text = {kind: {dom: rng.normal(size=d) for dom in DOMAINS} for kind in kinds}
    names = OPERATORS.names()
    p = params(operators={"names": names, "selective_whiten": {"n_directions": 4}},
               classifier={"probes": ["logreg", "svm", "softmax"]})
    acc, _ = run(images, X, text, p)
    ss = acc[(acc.protocol == "single_source") & (acc.selection == "train_val")]
    assert set(ss["operator"]) == set(names) and set(ss["classifier"]) == {"logreg", "svm", "softmax"}
    by_op = ss.groupby("operator")["accuracy"].mean()
    for op in ("center", "coral", "whiten"):
        assert by_op[op] > by_op["none"] + 0.1, op
    with pytest.raises(ValueError, match="operators.names: unknown operator 'magic'"):
        run(images, X, text, params(operators={"names": ["none", "magic"]}))


def test_dann_rows_join_the_grid_on_cross_domain_protocols():
    images, X, text, W = synthetic(seed=3)
    p = params(classifier={"probes": ["logreg", "dann"], "dann": {"steps": 60, "domain_weight": [0.0, 1.0]}},
               operators={"names": ["none", "coral"]})
    acc, _ = run(images, X, text, p)
    d = acc[(acc.classifier == "dann") & (acc.selection == "train_val")]
    assert d.groupby("protocol").size().to_dict() == {"single_source": 12, "lodo": 4}
    assert set(d["operator"]) == {"none"} and {json.loads(h)["domain_weight"] for h in d["hparams"]} <= {0.0, 1.0}
    assert {"logreg+coral"} <= set(acc["method"])


def c_conflict_world(seed=0, n=600, flip=("t",)):
    """Source-optimal C != target-optimal C. Label signal lives in 100 weak, independent copies (group A)
    and in one clean feature (B). A large C leans on B, the best separator; a small C (ridge) on A, the
    high-variance direction. In domain t, B's sign is flipped: what generalises there is A."""
    rng = np.random.default_rng(seed)
    rows, X = [], []
    for dom in ("a", "b", "t"):
        y = rng.integers(0, 2, n)
        s = 2 * y - 1
        A = 0.12 * s[:, None] + rng.normal(size=(n, 100))
        B = (-1.0 if dom in flip else 1.0) * s[:, None] + 0.1 * rng.normal(size=(n, 1))
        X.append(np.concatenate([A, B], 1))
        rows.append(pd.DataFrame({"domain": dom, "label": y, "split": "train"}))
    text = {kind: {dom: np.zeros(101) for dom in "abt"} for kind in ("domain", "domain_avg")}
    return with_ids(pd.concat(rows, ignore_index=True)), np.concatenate(X).astype(np.float32), text


C_GRID = [0.0003, 10.0]


def test_selection_picks_the_source_optimal_c_and_oracle_the_target_optimal_one():
    images, X, text = c_conflict_world()
    p = params(classifier={"C": C_GRID}, operators={"names": ["none"]},
               evaluation={"selection": ["train_val", "lodo_val", "oracle"], "trials": 2})
    acc, _ = run(images, X, text, p, domains=["a", "b", "t"])
    to_t = acc[(acc.target == "t") & (acc.protocol != "in_domain")]
    chosen = {(r.protocol, r.source, r.selection, r.trial): json.loads(r.hparams)["C"] for r in to_t.itertuples()}
    for (protocol, source, sel, trial), C in chosen.items():
        assert C == (C_GRID[0] if sel == "oracle" else C_GRID[1]), (protocol, source, sel, trial)
    assert {sel for (_, _, sel, _) in chosen} == {"train_val", "lodo_val", "oracle"}
    ora, tv = to_t[to_t.selection == "oracle"]["accuracy"].mean(), to_t[to_t.selection == "train_val"]["accuracy"].mean()
    assert ora > tv + 0.1  # the upper bound really is above what an honest selection gets


def test_target_labels_are_never_read_by_a_non_oracle_selection():
    """Poison every label of the target domain: what train_val and lodo_val choose for t, and the
    validation accuracy that chose it, do not move; the oracle's does."""
    images, X, text = c_conflict_world(seed=1)
    p = params(classifier={"C": C_GRID}, operators={"names": ["none", "center"]},
               evaluation={"selection": ["train_val", "lodo_val", "oracle"], "trials": 2})
    clean, _ = run(images, X, text, p, domains=["a", "b", "t"])
    poisoned_images = images.copy()
    t = (poisoned_images["domain"] == "t").to_numpy()
    poisoned_images.loc[t, "label"] = 1 - poisoned_images.loc[t, "label"]  # every target label wrong
    poisoned, _ = run(poisoned_images, X, text, p, domains=["a", "b", "t"])
    key = ["trial", "selection", "protocol", "method", "source", "target"]
    both = clean.merge(poisoned, on=key, suffixes=("", "_p"))
    honest = both[(both.target == "t") & both.selection.isin(["train_val", "lodo_val"]) & (both.protocol != "in_domain")]
    assert len(honest) > 0
    assert (honest["hparams"] == honest["hparams_p"]).all()
    np.testing.assert_array_equal(honest["val_accuracy"], honest["val_accuracy_p"])
    oracle = both[(both.target == "t") & (both.selection == "oracle") & (both.protocol != "in_domain")]
    assert (oracle["val_accuracy"] != oracle["val_accuracy_p"]).any()


def test_mean_and_se_equal_a_hand_computation():
    """Single source: per trial, the cell is the mean over the target's sources; Avg is the mean over
    targets; then mean and SD(ddof=1)/sqrt(trials) across trials."""
    rows = []
    values = {("a", "t"): [0.50, 0.60, 0.70], ("b", "t"): [0.30, 0.20, 0.40], ("t", "a"): [0.90, 0.80, 0.85]}
    for (s, tg), vals in values.items():
        for trial, v in enumerate(vals):
            rows.append({"trial": trial, "selection": "train_val", "protocol": "single_source", "method": "logreg",
                         "target": tg, "source": s, "accuracy": v})
    summ = summarize(pd.DataFrame(rows)).set_index("target")
    per_trial_t = [(0.5 + 0.3) / 2, (0.6 + 0.2) / 2, (0.7 + 0.4) / 2]
    sd = lambda v: np.sqrt(sum((x - np.mean(v)) ** 2 for x in v) / (len(v) - 1))  # noqa: E731
    assert summ.loc["t", "mean"] == pytest.approx(np.mean(per_trial_t))
    assert summ.loc["t", "se"] == pytest.approx(sd(per_trial_t) / np.sqrt(3))
    avg = [(per_trial_t[i] + values[("t", "a")][i]) / 2 for i in range(3)]
    assert summ.loc["Avg", "mean"] == pytest.approx(np.mean(avg))
    assert summ.loc["Avg", "se"] == pytest.approx(sd(avg) / np.sqrt(3))
    assert mean_se([0.4])[1] != mean_se([0.4])[1]  # one trial: no standard error (NaN), never a fake 0
    h = headline(summarize(pd.DataFrame(rows)))  # the DVC metrics file: training-domain validation only
    assert h["single_source"]["logreg"] == {"mean": round(np.mean(avg), 4), "se": round(sd(avg) / np.sqrt(3), 4)}
    assert all_metrics(summarize(pd.DataFrame(rows)))["single_source"]["train_val"]["logreg"] == h["single_source"]["logreg"]


def test_a_warm_run_with_the_cell_cache_equals_a_cold_run(tmp_path):
    images, X, text, W = synthetic(seed=2)
    p = params(classifier={"probes": ["logreg", "svm"], "C": [0.1, 1.0]}, translate={"alpha": [0.5, 1.0]},
               evaluation={"trials": 2})
    cache = CellCache(tmp_path / "cells")
    cold, info = run(images, X, text, p, W, cache)
    assert info["computed"] == info["cells"]
    cache.save()
    warm, info = run(images, X, text, p, W, CellCache(tmp_path / "cells"))
    assert info["computed"] == 0
    pd.testing.assert_frame_equal(warm, cold)
    # a one-value edit recomputes only the cells whose key changed, and equals a cold run of the new params
    edited = params(classifier={"probes": ["logreg", "svm"], "C": [0.1, 1.0]}, translate={"alpha": [0.5, 0.7]},
                    evaluation={"trials": 2})
    part, info = run(images, X, text, edited, W, CellCache(tmp_path / "cells"))
    n_alpha_cells = 2 * 2 * 2 * (12 + 4)  # trials x probes x C x (single-source + lodo) settings, alpha = 0.7 only
    assert info["computed"] == 2 * n_alpha_cells  # translate_single and translate_avg
    pd.testing.assert_frame_equal(part, run(images, X, text, edited, W)[0])


def test_new_descriptions_never_serve_an_old_cell(tmp_path):
    """A text operator's cells are keyed on the description vectors it reads: new prompts (templates,
    descriptions, model) recompute its cells and only its; the cached run equals a cold one."""
    images, X, text, W = synthetic(seed=5)
    p = params(operators={"names": ["none", "translate_single", "translate_avg"]}, evaluation={"trials": 1})
    cache = CellCache(tmp_path / "cells")
    run(images, X, text, p, W, cache)
    cache.save()
    moved = {"domain": text["domain"], "domain_avg": {d: v + 0.5 for d, v in text["domain_avg"].items()}}
    warm, info = run(images, X, moved, p, W, CellCache(tmp_path / "cells"))
    assert info["computed"] == 12 + 4  # the translate_avg cells of the single-source and LODO settings
    pd.testing.assert_frame_equal(warm, run(images, X, moved, p, W)[0])


def test_a_truncated_cell_shard_is_logged_and_its_cells_computed_again(tmp_path, caplog):
    images, X, text, W = synthetic(seed=3)
    # no warm-start store: the recomputed cells must be the cold fits' to the bit (a logreg fit from the stored
    # coefficients stops at the same tolerance from another start: a near-tied row may flip, docs/methods.md)
    p = params(classifier={"probes": ["logreg"], "C": 1.0}, operators={"names": ["none"]},
               evaluation={"trials": 1, "warm_starts": False})
    cache = CellCache(tmp_path / "cells")
    cold, info = run(images, X, text, p, W, cache)
    shard = cache.save()
    shard.write_bytes(shard.read_bytes()[:100])  # a crash mid-copy, a full disk
    again = CellCache(tmp_path / "cells")
    assert "deleting unreadable shard" in caplog.text and not shard.exists() and not again.values
    warm, info = run(images, X, text, p, W, again)
    assert info["computed"] == info["cells"]
    pd.testing.assert_frame_equal(warm, cold)


def test_the_caption_states_the_validation_share_applied():
    images, X, text, W = synthetic(seed=4, n=3)  # 3 images a (domain, class): one test, one validation at most
    p = params(classifier={"probes": ["logreg"], "C": 1.0}, operators={"names": ["none"]}, evaluation={"trials": 1},
               data={"val_fraction": 0.99})
    _, info = run(images, X, text, p, W)
    assert info["val_fraction"] == {"asked": 0.99, "applied": 0.5}
    assert validation_text(info["val_fraction"]).startswith("validation = 50% of the non-test rows of each domain "
                                                            "(data.val_fraction = 99% asked;")
    assert validation_text({"asked": 0.2, "applied": 0.2}) == "validation = 20% of the non-test rows of each domain."


def test_in_process_probes_fit_on_one_thread_and_the_threads_come_back(monkeypatch):
    """n_jobs 1: torch's and numpy's thread pools spinning against each other made the fits 7x slower."""
    import torch
    from threadpoolctl import threadpool_info

    import pipeline.evaluation as ev

    seen, real = [], ev.run_probe_job
    monkeypatch.setattr(ev, "run_probe_job", lambda *a: seen.append(
        (torch.get_num_threads(), {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})) or real(*a))
    before = torch.get_num_threads()
    images, X, text, _ = synthetic()
    run(images, X, text, params(classifier={"probes": ["svm"], "n_jobs": 1}))
    assert seen and all(t == 1 and b <= {1} for t, b in seen)
    assert torch.get_num_threads() == before


def test_a_new_operator_is_one_class_and_one_registry_entry():
    @OPERATORS.register("toy_scale")
    class ToyScale(Operator):
        """x <- factor * x: a source-free, global map."""
        hyper = {"factor": 1.0}
        scope, uses = "global", "text"

        def fit(self, X=None, domains=None, sources=()):
            return self

        def transform(self, X, domains=None):
            return np.asarray(X, np.float32) * self.factor

    try:
        images, X, text, _ = synthetic()
        p = params(operators={"names": ["none", "toy_scale"], "toy_scale": {"factor": [1.0, 3.0]}})
        acc, _ = run(images, X, text, p)
        toy = acc[acc.method == "logreg+toy_scale"]
        assert len(toy) and {json.loads(h)["factor"] for h in toy["hparams"]} <= {1.0, 3.0}
        # its params section is checked against its declared hyper-parameters by the registry entry
        with pytest.raises(ParamsError, match="operators.toy_scale.factr: unknown key.*'operators.toy_scale.factor'"):
            run(images, X, text, params(operators={"names": ["toy_scale"], "toy_scale": {"factr": 2.0}}))
    finally:
        OPERATORS.unregister("toy_scale")


def test_fixed_test_split_keeps_the_manifest_test_rows_in_every_trial():
    """Features from a model trained on this dataset's train split: trials redraw train / validation
    inside it, and every scored test row is a manifest test row."""
    from pipeline.partition import partitions

    images, X, text, W = synthetic(seed=4)
    parts = partitions(images, 3, 0.2, 0.25, 0, fixed_test=True)
    manifest_test = (images["split"] == "test").to_numpy()
    for part in parts:
        np.testing.assert_array_equal(part == "test", manifest_test)
    assert (parts[0] == "val").sum() > 0 and (parts[0] != parts[1]).any()  # validation redrawn
    free = partitions(images, 3, 0.2, 0.25, 0, fixed_test=False)
    assert (free[0] == "test").sum() == manifest_test.sum() and ((free[1] == "test") != (free[0] == "test")).any()


def test_an_unknown_probe_is_refused_naming_probes_and_adapters():
    images, X, text, _ = synthetic()
    with pytest.raises(ParamsError, match=r"classifier.probes: unknown probe or adapter 'svn' \(did you mean 'svm'\?\); "
                                          r"choose from \[.*'dann'.*'svm'\]"):
        run(images, X, text, params(classifier={"probes": ["logreg", "svn"]}))


def test_the_cell_cache_reports_its_size_and_prunes_old_code_versions(tmp_path, monkeypatch):
    """Each cell records the code version that made it; pruning drops the versions not in use, keeps the
    rest (a shard partly kept is rewritten) and the kept cells still serve the next run."""
    import pipeline.cellcache as cc

    images, X, text, _ = synthetic()
    root = tmp_path / "cells"
    monkeypatch.setattr(cc, "code_version", lambda: "old0000000000000")
    cache = CellCache(root)
    run(images, X, text, params(), cache=cache)
    cache.save()
    old = cc.cache_report(root)
    assert old["by_version"] == {"old0000000000000": old["cells"]} and old["shards"] == 1 and old["bytes"] > 0
    monkeypatch.setattr(cc, "code_version", lambda: "new0000000000000")
    cache = CellCache(root)
    _, info = run(images, X, text, params(), cache=cache)
    assert info["computed"] == info["cells"]  # another code version: nothing served
    cache.save()
    assert cc.cache_report(root)["by_version"] == {"old0000000000000": old["cells"], "new0000000000000": info["cells"]}
    assert set(cc.cache_report(root)["starts"]) == {"old0000000000000", "new0000000000000"}  # the exact probes' starts
    r = cc.prune(root)
    assert (r["dropped"], r["kept"]) == (old["cells"], info["cells"]) and r["bytes_after"] < r["bytes_before"]
    assert r["starts_dropped"] == old["starts"]["old0000000000000"]["files"] > 0
    assert cc.cache_report(root)["by_version"] == {"new0000000000000": info["cells"]}
    assert set(cc.cache_report(root)["starts"]) == {"new0000000000000"}
    _, again = run(images, X, text, params(), cache=CellCache(root))
    assert again["computed"] == 0


def test_a_new_c_starts_from_the_stored_fits_and_gives_the_cells_of_cold_fits(tmp_path, caplog):
    """A sweep step that adds a C value: each exact probe's new cells start from the nearest C stored by the
    first run (pipeline/starts.py) and equal the cells of cold fits; an unreadable start file is logged,
    deleted and costs only a cold fit; evaluation.warm_starts: false keeps no store."""
    import logging

    from pipeline.starts import DIR

    images, X, text, _ = synthetic()
    first = {"probes": ["logreg", "svm"], "C": [0.1, 1.0]}
    root = tmp_path / "cells"
    cache = CellCache(root)
    _, info = run(images, X, text, params(classifier=first), cache=cache)
    cache.save()
    assert info["warm_started_fits"] == 0
    files = sorted((root / DIR).rglob("*.npz"))
    assert files  # one per training matrix and exact probe
    files[0].write_bytes(b"not an npz")
    wider = params(classifier={**first, "C": [0.1, 0.5, 1.0]})
    cache = CellCache(root)
    with caplog.at_level(logging.WARNING, logger="pipeline.starts"):
        acc, info = run(images, X, text, wider, cache=cache)
    assert str(files[0]) in caplog.text and "start cold" in caplog.text
    assert 0 < info["warm_started_fits"] < info["computed"] and info["computed"] == info["cells"] // 3
    cold_cache = CellCache(None)
    cold, cold_info = run(images, X, text, wider, cache=cold_cache)
    assert cold_info["warm_started_fits"] == 0
    assert {k: cache.values[k] for k in cache.new} == {k: cold_cache.values[k] for k in cache.new}
    pd.testing.assert_frame_equal(acc, cold)
    off = tmp_path / "off"
    run(images, X, text, params(classifier=first, evaluation={"warm_starts": False}), cache=CellCache(off))
    assert not (off / DIR).exists()


def test_trials_of_a_source_set_are_one_job_whose_exact_fits_start_from_the_last_trials(monkeypatch):
    """evaluation.warm_starts: each source set's trials run in order in one job, and an exact probe of trial t
    starts from the same matrix's solution in trial t - 1 (not from zero): the same cells as cold fits;
    warm_starts: false plans one job per (trial, source set), every fit cold."""
    from pipeline import probes
    from pipeline.evaluation import plan

    images, X, text, _ = synthetic(n=30)
    p = params(classifier={"probes": ["logreg", "svm"], "C": [0.1, 1.0]}, evaluation={"trials": 3})
    cold = params(classifier={"probes": ["logreg", "svm"], "C": [0.1, 1.0]}, evaluation={"trials": 3, "warm_starts": False})
    chained = plan(images, X, DOMAINS, p, CellCache(None), False, text)
    apart = plan(images, X, DOMAINS, cold, CellCache(None), False, text)
    assert len(chained.probe_jobs) == 8 and {tuple(t for t, _ in trials) for _, trials in chained.probe_jobs} == {(0, 1, 2)}
    assert len(apart.probe_jobs) == 24 and all(len(trials) == 1 for _, trials in apart.probe_jobs)

    begun, real = [], probes.fit_probes
    monkeypatch.setattr(probes, "fit_probes", lambda names, X, y, Cs, **kw: begun.append(
        (names[0], bool(((kw.get("starts") or {}).get(names[0])))) ) or real(names, X, y, Cs, **kw))
    acc, _ = run(images, X, text, p)
    warm = [s for _, s in begun]
    assert sum(warm) and not all(warm)  # trial 0 cold, later trials from the last one's solutions
    begun.clear()
    acc_cold, _ = run(images, X, text, cold)
    assert begun and not any(s for _, s in begun)
    pd.testing.assert_frame_equal(acc, acc_cold)


def test_the_warm_start_store_keeps_float16_unless_it_overflows_and_refuses_non_finite_files(tmp_path, caplog):
    """A start is stored in float16 (float32 where a coefficient overflows float16); a file with a non-finite
    coefficient is not a start: logged, deleted, {}."""
    import logging

    from pipeline import starts

    small, large = (np.full((3, 4), 0.5), np.zeros(3)), (np.full((3, 4), 1e6), np.zeros(3))
    starts.save(tmp_path, "a", {1.0: small, 0.1: small})
    starts.save(tmp_path, "b", {1.0: large})
    with np.load(tmp_path / "a.npz") as z:
        assert z["coef"].dtype == np.float16 and list(z["Cs"]) == [0.1, 1.0]
    with np.load(tmp_path / "b.npz") as z:
        assert z["coef"].dtype == np.float32
    np.testing.assert_array_equal(starts.load(tmp_path, "b")[1.0][0], large[0])
    assert starts.nearest(0.5, starts.load(tmp_path, "a")) is not None
    with open(tmp_path / "c.npz", "wb") as f:
        np.savez(f, Cs=np.array([1.0]), coef=np.full((1, 3, 4), np.nan), intercept=np.zeros((1, 3)))
    with caplog.at_level(logging.WARNING, logger="pipeline.starts"):
        assert starts.load(tmp_path, "c") == {}
    assert "non-finite" in caplog.text and not (tmp_path / "c.npz").exists()
