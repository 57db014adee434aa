"""Real `dvc repro` end to end on a real-PACS subset with a random CLIP, and the partial reruns."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.data import make_subset
from pipeline.randomclip import build_random_clip
from pipeline.store import read_metadata

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1",
           PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
ALL = {"prepare", "train_clip", "model", "embed_images", "embed_prompts", "learn_styles", "train_arcface", "similarity",
       "search_descriptions", "description_accuracy", "learn_descriptions", "evaluate", "domain_gap", "fewshot_gap", "layerwise_gap", "layerwise",
       "diagnostics", "results"}
ALWAYS = {"prepare", "model"}  # always_changed: a rescan of file stats, a fingerprint of the model files
EVAL = ALWAYS | {"evaluate", "results", "diagnostics"}
TINY_MINICLIP = {"pairings": [["resnet", "minilm"]], "use": ["resnet", "minilm"], "image_size": 32, "embed_dim": 16,
                 "resnet": {"width": 8, "blocks": 1}, "epochs": 1, "batch_size": 32}
# the layer and description stages at their cheapest where the first test already covers them in full:
# no tower block (layerwise scores the projection, whose cells are evaluate's), two learning steps
CHEAP_RESEARCH = {"embed": {"layers": None}, "layerwise": {"gap_metrics": ["fid"]},
                  "descriptions": {"learn": {"steps": 2}}}
pytestmark = pytest.mark.slow  # every test here runs `dvc repro`


def sh(cwd: Path, *cmd: str, check: bool = True) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    assert not check or r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


def repro(cwd: Path) -> set[str]:
    """Run `dvc repro`; return the names of the stages that actually ran (models/dvc.yaml:x -> x)."""
    return {m.split(":")[-1] for m in re.findall(r"Running stage '([\w/.:]+)'", sh(cwd, "dvc", "repro"))}


def edit_params(cwd: Path, fn) -> None:
    p = yaml.safe_load((cwd / "params.yaml").read_text())
    fn(p)
    (cwd / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def commit(cwd: Path, msg: str) -> None:
    sh(cwd, "git", "add", "-A")
    sh(cwd, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", msg)


def make_project(work: Path, data_root: Path | str, model: str, **sections) -> Path:
    """A git + DVC project with this repo's pipeline, pointed at ``data_root`` and ``model``, tiny settings
    (``sections`` update params sections)."""
    proj = work / "proj"
    proj.mkdir()
    for item in ("dvc.yaml", "params.yaml", "pyproject.toml", ".gitignore", ".dvcignore"):
        (proj / item).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / item, proj / item)
    for d in ("pipeline", "stages"):
        shutil.copytree(REPO / d, proj / d, ignore=shutil.ignore_patterns("__pycache__"))

    def tiny(p):
        p["data"]["root"] = str(data_root)
        p["model"]["name"] = model
        p["embed"]["batch_size"] = 16
        p["embed"]["shard_size"] = 1024
        p["classifier"].update(n_jobs=1)  # 84 images: worker start-up would dominate
        p["classifier"]["dann"].update(steps=30)
        p["clip"].update(TINY_MINICLIP)
        p["promptstyler"].update(k=3, iterations=5)
        p["descriptions"]["learn"].update(steps=10)
        p["promptstyler"]["arcface"].update(epochs=10)
        p["gap"].update(subset_size=10)  # 21 images per domain: two disjoint subsets of 10
        p["classifier"].update(probes=["logreg", "svm", "dann"], C=[0.1, 1.0])
        p["classifier"]["dann"].update(domain_weight=1.0)
        p["operators"].update(names=["none", "translate_single", "center", "coral"], coral={"ridge": 0.1})
        p["evaluation"].update(trials=2, selection=["train_val", "lodo_val", "oracle"])  # every method, end to end
        p["evaluation"].update(preview=False)  # its calibration (1-2 s an evaluate) runs in the first test's project only
        for k, v in sections.items():
            p[k].update(v)

    edit_params(proj, tiny)
    sh(proj, "git", "init", "-q")
    sh(proj, "dvc", "init", "-q")
    commit(proj, "init")
    return proj


@pytest.fixture(scope="module")
def project(tmp_path_factory, pacs_root, tiny_clip) -> Path:
    work = tmp_path_factory.mktemp("dvc")
    return make_project(work, make_subset(pacs_root, work / "pacs", per_class=3), str(tiny_clip),
                        evaluation={"preview": True})  # the default: the plan's calibrated estimate, end to end


def test_repro_end_to_end_then_partial_reruns(project, tmp_path):
    # --- a model that is missing: the project's own one-line hint, before DVC checks any path
    model = yaml.safe_load((project / "params.yaml").read_text())["model"]["name"]
    edit_params(project, lambda p: p["model"].update(name="openai/clip-vit-base-patch32"))
    out = sh(project, "dvc", "repro", check=False)
    assert "clipdg fetch openai/clip-vit-base-patch32 models/clip-vit-base-patch32" in out
    assert "No such file or directory" not in out and "Running stage 'embed_images'" not in out
    edit_params(project, lambda p: p["model"].update(name=model))

    ran = repro(project)
    assert ran == ALL  # train_clip runs once and trains nothing: model.name is a transformers CLIP
    assert json.loads((project / "reports/retrieval.json").read_text()) == {"trained": False}
    assert [p.name for p in (project / "models/miniclip").iterdir()] == ["NOT_TRAINED.json"]
    assert json.loads((project / "models/model.json").read_text())["family"] == "hf_clip"

    # --- the output contract
    manifest = pq.read_table(project / "data/manifest.parquet").to_pandas()
    assert len(manifest) == 4 * 7 * 3 and "path" not in manifest
    images = pq.read_schema(project / "features/images.parquet")
    assert {"image_id", "domain", "class", "split", "embedding"} <= set(images.names) and "path" not in images.names
    meta = read_metadata(project / "features/images.parquet")
    assert meta["dim"] == 64 and len(meta["weight_sha256"]) == 64 and meta["preprocessing"]["crop_hw"] == [224, 224]
    assert meta["label_space"]["classes"] == ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]
    embed = json.loads((project / "reports/embed.json").read_text())
    assert (embed["embedded"], embed["reused"], embed["store_rows"]) == (84, 0, 84) and embed["images_per_second"] > 0
    prompts = pq.read_table(project / "features/prompts.parquet").to_pandas()
    assert {"text", "kind", "domain", "class", "embedding"} <= set(prompts.columns)
    assert set(prompts["kind"]) == {"domain", "domain_noun", "domain_avg", "class"}
    assert json.loads((project / "data/classes.json").read_text())["names"][0] == "dog"
    assert json.loads((project / "data/domains.json").read_text())["descriptions"]["sketch"] == "a black and white drawing"
    sim = pd.read_csv(project / "reports/similarity.csv")
    assert list(sim.columns) == ["description", "photo", "art_painting", "cartoon", "sketch"]
    assert sim["description"].tolist()[:4] == ["a photo", "an art painting", "a cartoon", "a black and white drawing"]
    assert len(sim) == 8 and (project / "reports/similarity.png").stat().st_size > 1000
    acc = pd.read_csv(project / "reports/accuracy.csv")
    assert {"trial", "selection", "method", "source", "target", "hparams", "val_accuracy", "accuracy",
            "missing_classes"} <= set(acc.columns)
    assert len(acc[acc.protocol == "single_source"][["source", "target"]].drop_duplicates()) == 12
    assert set(acc.selection) == {"-", "train_val", "lodo_val", "oracle"} and set(acc.trial) == {0, 1}
    styler = acc[acc.method == "promptstyler"]  # trained on text only, scored beside zero-shot
    assert len(styler) == 2 * 4 and set(styler.protocol) == {"zeroshot"} and set(styler.classifier) == {"arcface"}
    results = (project / "reports/results.md").read_text()
    assert "Leave-one-domain-out — training-domain validation" in results and " ± " in results
    assert "\\begin{tabular}" in (project / "reports/results.tex").read_text()
    styles = pq.read_table(project / "features/styles.parquet").to_pandas()
    assert {"style", "class", "embedding"} <= set(styles.columns) and len(styles) == 3 * 7
    assert json.loads((project / "reports/promptstyler_styles.json").read_text())["k"] == 3
    metrics = json.loads((project / "reports/metrics.json").read_text())  # the headline: train_val's Avg
    assert set(metrics["zeroshot"]["promptstyler"]) == {"mean", "se"}
    assert {"zeroshot", "single_source", "lodo", "in_domain"} == set(metrics)
    assert set(metrics["lodo"]) == {"logreg", "svm", "dann", "logreg+translate_single", "svm+translate_single",
                                    "logreg+center", "svm+center", "logreg+coral", "svm+coral"}
    assert set(json.loads((project / "reports/metrics_all.json").read_text())["lodo"]) == {"train_val", "lodo_val", "oracle"}
    # one small metrics file for `dvc exp show`: the rest are outputs, the training curves DVC plots
    shown = json.loads(sh(project, "dvc", "metrics", "show", "--json"))
    files = {f for rev in shown.values() for f in rev["data"]}
    assert files == {"reports/metrics.json"}, files
    for stage in ("learn_styles", "train_arcface"):
        assert list((project / "reports" / stage / "plots" / "metrics").glob("*.tsv")), stage
    diag = json.loads((project / "reports/diagnostics.json").read_text())
    gaps7 = {"fid", "kid", "mmd", "cmmd", "coral", "bures", "corr"}
    assert set(diag["gap_vs_drop"]) == gaps7 and "direction_alignment" in diag
    assert diag["gap_vs_drop"]["fid"]["spearman_ci"] is not None  # 12 pairs: Fisher's interval
    diag = pd.read_csv(project / "reports/diagnostics.csv")
    assert len(diag) == 12 and {"source", "target", "alignment_cos", "accuracy_drop", "fid"} <= set(diag.columns)
    assert json.loads((project / "reports/prepare.json").read_text())["skipped"] == 0
    gap = pd.read_csv(project / "reports/domain_gap.csv")
    assert list(gap.columns) == ["metric", "source", "target", "value", "ci_low", "ci_high", "bias"]
    assert set(gap["metric"]) == gaps7 and len(gap) == 7 * 16
    centre = gap.value - gap.bias  # the bias-corrected estimate: the intervals' centre
    assert ((gap.ci_low <= centre) & (centre <= gap.ci_high)).all()
    fs = pd.read_csv(project / "reports/fewshot_gap.csv")
    assert set(fs["metric"]) == gaps7 and set(fs["k"]) == {5, 10, 20, 21} and len(fs[fs.k == 21]) == 7 * 12  # k = all: 21
    summary = pd.read_csv(project / "reports/fewshot_summary.csv")
    assert {"spearman_vs_full", "relative_error", "covers_full"} <= set(summary.columns)
    vs_drop = json.loads((project / "reports/diagnostics.json").read_text())["fewshot_gap_vs_drop"]
    assert set(vs_drop) == gaps7 and set(vs_drop["kid"]) == {"5", "10", "20", "all"}
    assert set(json.loads((project / "reports/fewshot_gap.json").read_text())["smallest_k_spearman_0.9"]) == gaps7
    assert len(list((project / "reports/fewshot_plots").glob("*.png"))) == 7
    gap_json = json.loads((project / "reports/domain_gap.json").read_text())
    assert set(gap_json["clip_inception_score"]) == {"photo", "art_painting", "cartoon", "sketch"}
    assert gap_json["subset_size"]["used"] == 10

    curve = pd.read_csv(project / "reports/layerwise_curve.csv")  # every block of the tiny ViT, then the projection
    assert curve["name"].tolist() == ["embeddings", "block 1", "block 2", "projection"]
    assert {"in_domain", "single_source", "lodo", "fid", "kid", "coral"} <= set(curve.columns)
    assert curve[["in_domain", "lodo", "fid"]].notna().all().all()
    layer_json = json.loads((project / "reports/layerwise.json").read_text())
    assert layer_json["best_lodo_by_test_accuracy"] in set(curve["name"]) and len(layer_json["lodo"]) == 4
    assert read_metadata(project / "features/layers.parquet")["layers"][2] == {
        "column": "layer_2", "index": 2, "name": "block 2", "dim": 64}

    search = pd.read_csv(project / "reports/description_accuracy.csv")
    assert search.groupby("domain")["selected"].sum().eq(1).all() and search["translation_accuracy"].between(0, 1).all()
    assert search["text"].tolist() == pd.read_csv(project / "reports/description_search.csv")["text"].tolist()
    assert len(search[search.domain == "sketch"]) == 6  # the default and the built-in pool's other five
    learned = json.loads((project / "reports/learn_descriptions.json").read_text())
    assert learned["prompt"] == "a {} of a" and set(learned["sim_own"]) == {"photo", "art_painting", "cartoon", "sketch"}
    searched = pq.read_table(project / "features/descriptions_searched.parquet").to_pandas()
    assert set(searched["kind"]) == {"domain_searched"} and len(searched) == 4

    sh(project, "dvc", "plots", "show", "-o", str(tmp_path / "plots"))  # every declared plot renders
    assert (tmp_path / "plots" / "index.html").exists()

    commit(project, "run")
    status = sh(project, "dvc", "status")
    assert "train_clip" not in status and "changed" not in status.replace("always changed", "")  # nothing stale
    assert repro(project) == ALWAYS  # nothing changed: a rescan and a fingerprint, both from their caches


    # --- a classifier, operator or translation param reruns only evaluation and what reads it
    edit_params(project, lambda p: p["classifier"].update(C=[0.05, 1.0]))
    # layerwise reruns its probes, never its blocks' gaps (stage layerwise_gap); each candidate description's probe
    # accuracy, never the search (no text is encoded again)
    assert repro(project) == EVAL | {"layerwise", "description_accuracy"}
    diff = sh(project, "dvc", "metrics", "diff", "--md")
    assert "reports/metrics.json" in diff and "single_source.logreg.mean" in diff
    edit_params(project, lambda p: p["gap"].update(n_boot=3))
    # layerwise_gap reruns, and writes the same values (no interval: n_boot is not in them), so layerwise does not
    assert repro(project) == ALWAYS | {"domain_gap", "diagnostics", "fewshot_gap", "layerwise_gap"}
    edit_params(project, lambda p: p["fewshot"].update(draws=3))
    assert repro(project) == ALWAYS | {"fewshot_gap", "diagnostics"}  # its stage, and the cheap one that reads its table
    # --- a layer param: the embedding stage (every block is cached: no image embedded) and the layer stage only
    edit_params(project, lambda p: p["embed"].update(layers=[0, 2]))
    assert repro(project) == ALWAYS | {"embed_images", "layerwise_gap", "layerwise"}
    assert json.loads((project / "reports/embed.json").read_text())["embedded"] == 0
    assert pd.read_csv(project / "reports/layerwise_curve.csv")["name"].tolist() == ["embeddings", "block 2", "projection"]
    # --- description params: their own stages, and evaluate (which reads the descriptions; here no cell uses them)
    edit_params(project, lambda p: (p["descriptions"]["learn"].update(steps=4), p["layerwise"].update(gap_metrics=["fid"]),
                                    p["descriptions"].update(candidates={"sketch": ["a doodle", "a pencil drawing"]})))
    assert repro(project) == ALWAYS | {"learn_descriptions", "search_descriptions", "description_accuracy", "layerwise_gap",
                                       "layerwise", "evaluate", "results"}
    search = pd.read_csv(project / "reports/description_search.csv")
    assert search.loc[search.domain == "sketch", "text"].tolist() == ["a black and white drawing", "a doodle",
                                                                     "a pencil drawing"]

    # --- PromptStyler: ArcFace params retrain the classifier only
    edit_params(project, lambda p: p["promptstyler"]["arcface"].update(m=0.3))
    assert repro(project) == {"train_arcface"} | EVAL

    # --- a description: the text and what reads it, never the images or the styles (results only if the table moved)
    edit_params(project, lambda p: p["prompts"].update(domains={"cartoon": "a comic strip"}))
    ran = repro(project)
    assert ALWAYS | {"train_clip", "embed_prompts", "similarity", "evaluate", "domain_gap", "diagnostics",
                     "search_descriptions", "description_accuracy"} <= ran <= \
        ALWAYS | {"train_clip", "embed_prompts", "similarity", "evaluate", "domain_gap", "diagnostics", "fewshot_gap",
                  "results", "search_descriptions", "description_accuracy"}  # fewshot_gap only if the gaps moved (DVC compares domain_gap's outputs)
    # --- content, not where it comes from: a preset change that names the same label space and text, a MiniCLIP
    # param while model.name is a transformers CLIP, the same images at another data.root, the same model at
    # another path with its prefix -- nothing that embeds, trains or evaluates reruns (train_clip rewrites its note)
    moved = tmp_path / "relocated" / "pacs_copy"
    shutil.copytree(yaml.safe_load((project / "params.yaml").read_text())["data"]["root"], moved)
    model_copy = tmp_path / "relocated" / "clip"
    shutil.copytree(yaml.safe_load((project / "params.yaml").read_text())["model"]["name"], model_copy)
    before = (project / "data/manifest.parquet").read_bytes()

    def same_content(p):
        p["data"].update(dataset="custom", domains=["photo", "art_painting", "cartoon", "sketch"], root=str(moved))
        p["prompts"].update(domains={"photo": "a photo", "art_painting": "an art painting", "cartoon": "a comic strip",
                                     "sketch": "a black and white drawing"})
        p["clip"].update(epochs=2, lr=0.002)
        p["model"].update(name=f"hf_clip:{model_copy}")
    edit_params(project, same_content)
    assert repro(project) == ALWAYS | {"train_clip"}
    assert (project / "data/manifest.parquet").read_bytes() == before
    assert pq.read_table(project / "data/paths.parquet").to_pandas()["path"].str.startswith(str(moved)).all()
    assert json.loads((project / "reports/prepare.json").read_text())["dataset"] == "custom"


def test_miniclip_is_trained_by_the_dag_and_reruns_what_it_embedded(tmp_path, pacs_root, tiny_clip):
    """model.name: models/miniclip puts MiniCLIP's training before the embeddings, and switching from a
    transformers CLIP to it reruns everything that model embedded."""
    proj = make_project(tmp_path, make_subset(pacs_root, tmp_path / "pacs", per_class=2), str(tiny_clip),
                        classifier={"probes": ["logreg"], "C": 1.0}, operators={"names": ["none"]},
                        evaluation={"trials": 1, "selection": ["train_val"]}, promptstyler={"k": 2, "iterations": 2},
                        gap={"metrics": ["fid"], "subset_size": 5, "n_boot": 3}, **CHEAP_RESEARCH)
    assert repro(proj) == ALL
    # --- a team's shared cache: push to a remote, then a fresh clone pulls and reruns nothing expensive
    remote = tmp_path / "remote"
    sh(proj, "dvc", "remote", "add", "-d", "team", str(remote))
    commit(proj, "transformers CLIP run")
    sh(proj, "dvc", "push")
    sh(tmp_path, "git", "clone", "-q", str(proj), "clone")
    clone = tmp_path / "clone"
    sh(clone, "dvc", "pull")
    assert repro(clone) == ALWAYS  # prepare rescans file stats, model fingerprints the model: nothing else
    # --- the pipeline's own CLIP: train_clip trains it, and everything it embeds reruns with it
    edit_params(proj, lambda p: p["model"].update(name="models/miniclip"))
    assert repro(proj) == ALL
    commit(proj, "MiniCLIP run")
    sh(proj, "dvc", "push")
    sh(clone, "git", "pull", "-q")
    sh(clone, "dvc", "pull")
    assert repro(clone) == ALWAYS and (clone / "models/miniclip/miniclip.json").is_file()
    ret = pd.read_csv(proj / "reports/retrieval.csv")
    assert list(ret.columns) == ["pairing", "split", "n_images", "n_captions", "top1", "top5"]
    assert set(ret["split"]) == {"train", "test"} and (ret["n_captions"] == 7).all()  # class-only captions
    assert (proj / "models/miniclip/miniclip.json").is_file() and (proj / "reports/clip_loss.png").is_file()
    assert (proj / "reports/train_clip/plots/metrics/resnet+minilm/loss.tsv").is_file()  # DVCLive's layout
    assert read_metadata(proj / "features/images.parquet")["dim"] == 16
    assert json.loads((proj / "models/model.json").read_text())["family"] == "miniclip"
    results = (proj / "reports/results.md").read_text()
    assert "test split is the manifest's in every trial" in results
    assert "trained on the train split of photo, with class-only captions" in results


def test_sweeps_with_dvc_experiments_queue_and_temp(tmp_path, pacs_root, tiny_clip):
    """`dvc exp run --queue` over two values + `dvc queue start` + `dvc exp show`, and `--temp`, from a
    project whose data root and caches are *relative* paths (as the defaults are): DVC runs them in a
    temporary copy, where the stages resolve them against the original project ($DVC_ROOT). A queued
    experiment never re-embeds, and computes only the cells its new value changes."""
    make_subset(pacs_root, tmp_path / "pacs", per_class=3)
    proj = make_project(tmp_path, "../pacs", str(tiny_clip), classifier={"probes": ["logreg"], "C": 1.0},
                        operators={"names": ["none", "translate_single"]}, translate={"alpha": 1.0},
                        evaluation={"trials": 1}, promptstyler={"k": 2, "iterations": 2}, **CHEAP_RESEARCH)
    assert repro(proj) == ALL
    commit(proj, "baseline")
    shards = set((proj / "cache" / "embeddings").rglob("shard-*.parquet"))
    for alpha in ("0.7", "0.9"):
        sh(proj, "dvc", "exp", "run", "--queue", "-S", f"translate.alpha={alpha}", "-n", f"alpha-{alpha[2]}")
    sh(proj, "dvc", "queue", "start", "-j", "1")
    import time

    deadline = time.time() + 600
    while time.time() < deadline:
        status = sh(proj, "dvc", "queue", "status")
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    assert "Failed" not in status, status + sh(proj, "dvc", "queue", "logs", "alpha-7", check=False)
    assert status.count("Success") == 2, status
    for name in ("alpha-7", "alpha-9"):
        log = sh(proj, "dvc", "queue", "logs", name)
        assert "Running stage 'evaluate'" in log and "Running stage 'embed_images'" not in log, log[-3000:]
    shown = json.loads(sh(proj, "dvc", "exp", "show", "--json"))
    exps = {e["name"]: e for rev in shown for e in (rev.get("experiments") or []) for e in [e["revs"][0]]}
    assert {"alpha-7", "alpha-9"} <= set(exps)
    for name in ("alpha-7", "alpha-9"):
        metrics = exps[name]["data"]["metrics"]["reports/metrics.json"]["data"]
        assert metrics["single_source"]["logreg+translate_single"]["mean"] is not None
        assert exps[name]["data"]["params"]["params.yaml"]["data"]["translate"]["alpha"] == float(f"0.{name[-1]}")
    table = sh(proj, "dvc", "exp", "show", "--md")
    assert "alpha-7" in table and "single_source.logreg.mean" in table
    assert set((proj / "cache" / "embeddings").rglob("shard-*.parquet")) == shards  # nothing was embedded
    out = sh(proj, "dvc", "exp", "run", "--temp", "-S", "translate.alpha=0.8")
    assert "Running stage 'evaluate'" in out and "Running stage 'embed_images'" not in out


# per preset: a family / feature variant, so the presets' runs also cover the encoder families end to end
PRESET_RUNS = {
    "vlcs": ("hf_clip", {}),
    "office_home": ("siglip", {}),
    "terra_incognita": ("hf_clip", {"embed": {"features": "both"}, "classifier": {"features": "pooled"},
                                    "operators": {"names": ["none", "center"]}}),
    "domain_net": ("hf_clip", {"prompts": {"templates": "clip80"}}),
}


def preset_project(work: Path, preset: str, model: Path, **sections) -> Path:
    """A project on a generated tree with ``preset``'s real domain folders and a sample of its real classes,
    ``data.dataset: preset`` and nothing else about the dataset in params; the smallest grid."""
    from trees import PRESET_SAMPLES, make_tree

    root = make_tree(work / preset, *PRESET_SAMPLES[preset], per_class=3)
    small = dict(data={"dataset": preset, "domains": None, "classes": None},
                 classifier={"probes": ["logreg"], "C": 1.0}, operators={"names": ["none", "translate_single"]},
                 evaluation={"trials": 1, "selection": ["train_val"]}, promptstyler={"k": 2, "iterations": 2},
                 gap={"metrics": ["fid", "kid"], "n_boot": 5, "n_subsets": 5, "subset_size": 5}, **CHEAP_RESEARCH)
    for k, v in sections.items():
        small[k] = {**small.get(k, {}), **v}
    work.mkdir(parents=True, exist_ok=True)
    return make_project(work, root, str(model), **small)


@pytest.fixture(scope="module")
def tiny_siglip(tmp_path_factory) -> Path:
    from pipeline.randomclip import build_random_siglip

    return build_random_siglip(tmp_path_factory.mktemp("siglip") / "tiny", "tiny", seed=0)


@pytest.mark.parametrize("preset", sorted(PRESET_RUNS))
def test_each_preset_runs_dvc_repro_end_to_end(preset, tmp_path, tiny_clip, tiny_siglip):
    """vlcs, office_home, terra_incognita, domain_net (pacs: the tests above) on generated trees: `dvc repro` runs
    every stage, the label space is the preset's domains and the sorted class folders, prompts use the cleaned
    class names, and the tables have a column per domain. Each also runs one encoder family / feature variant."""
    from trees import PRESET_SAMPLES

    family, extra = PRESET_RUNS[preset]
    proj = preset_project(tmp_path, preset, {"hf_clip": tiny_clip, "siglip": tiny_siglip}[family], **extra)
    assert repro(proj) == ALL
    domains, sample = PRESET_SAMPLES[preset]
    rep = json.loads((proj / "reports/prepare.json").read_text())
    assert rep["dataset"] == preset and rep["images"] == len(domains) * len(sample) * 3
    classes = json.loads((proj / "data/classes.json").read_text())
    assert classes["classes"] == sorted(sample) and not any("_" in n for n in classes["names"])
    prompts = pq.read_table(proj / "features/prompts.parquet").to_pandas()
    assert set(prompts.loc[prompts["kind"] == "domain", "domain"]) == set(domains)
    texts = set(prompts.loc[prompts["kind"] == "class", "text"])
    for folder, name in zip(classes["classes"], classes["names"]):
        assert any(name in t for t in texts) and not any(folder in t for t in texts if "_" in folder)
    results = (proj / "reports/results.md").read_text()
    assert all(f" {d} |" in results for d in domains)
    model = json.loads((proj / "models/model.json").read_text())
    assert model["family"] == family and model["objective"] == ("sigmoid" if family == "siglip" else "softmax")
    if preset == "terra_incognita":  # probes on the pre-projection features, zero-shot on the joint ones
        assert "pooled features" in results and pq.read_schema(proj / "features/images.parquet").field("pooled")
    if preset == "domain_net":  # CLIP's 80 templates
        assert "a bad photo of the The Eiffel Tower." in texts and len(texts) == 80 * 5
