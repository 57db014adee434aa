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
ALL = {"prepare", "train_clip", "embed_images", "embed_prompts", "learn_styles", "train_arcface", "similarity", "evaluate",
       "domain_gap", "diagnostics"}
TINY_MINICLIP = {"pairings": [["resnet", "minilm"]], "use": ["resnet", "minilm"], "image_size": 32, "embed_dim": 16,
                 "resnet": {"width": 8, "blocks": 1}, "epochs": 1, "batch_size": 32}


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


def make_project(work: Path, data_root: Path, model: str) -> Path:
    """A git + DVC project with this repo's pipeline, pointed at ``data_root`` and ``model``, tiny settings."""
    proj = work / "proj"
    proj.mkdir()
    for item in ("dvc.yaml", "params.yaml", "pyproject.toml", ".gitignore", ".dvcignore", "models/dvc.yaml"):
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
        p["promptstyler"]["arcface"].update(epochs=10)
        p["gap"].update(subset_size=10)  # 21 images per domain: two disjoint subsets of 10

    edit_params(proj, tiny)
    sh(proj, "git", "init", "-q")
    sh(proj, "dvc", "init", "-q")
    commit(proj, "init")
    return proj


@pytest.fixture(scope="module")
def project(tmp_path_factory, pacs_root, tiny_clip) -> Path:
    work = tmp_path_factory.mktemp("dvc")
    return make_project(work, make_subset(pacs_root, work / "pacs", per_class=3), str(tiny_clip))


def test_repro_end_to_end_then_partial_reruns(project, tmp_path):
    ran = repro(project)
    assert ran == ALL - {"train_clip"}  # a transformers model.name: MiniCLIP is not trained

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
    sim = pd.read_csv(project / "reports/similarity.csv")
    assert list(sim.columns) == ["description", "photo", "art_painting", "cartoon", "sketch"]
    assert sim["description"].tolist()[:4] == ["a photo", "an art painting", "a cartoon", "a black and white drawing"]
    assert len(sim) == 8 and (project / "reports/similarity.png").stat().st_size > 1000
    acc = pd.read_csv(project / "reports/accuracy.csv")
    assert {"method", "source", "target", "accuracy", "missing_classes"} <= set(acc.columns)
    assert len(acc[acc.protocol == "single_source"][["source", "target"]].drop_duplicates()) == 12
    styler = acc[acc.method == "promptstyler"]  # trained on text only, scored beside zero-shot
    assert len(styler) == 4 and set(styler.protocol) == {"zeroshot"} and set(styler.classifier) == {"arcface"}
    styles = pq.read_table(project / "features/styles.parquet").to_pandas()
    assert {"style", "class", "embedding"} <= set(styles.columns) and len(styles) == 3 * 7
    assert json.loads((project / "reports/promptstyler_styles.json").read_text())["k"] == 3
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert "promptstyler" in metrics["zeroshot"]
    assert {"zeroshot", "single_source", "lodo", "in_domain", "gap_vs_drop", "direction_alignment"} <= set(metrics)
    assert set(metrics["gap_vs_drop"]) == {"fid", "kid", "mmd", "cmmd"}
    diag = pd.read_csv(project / "reports/diagnostics.csv")
    assert len(diag) == 12 and {"source", "target", "alignment_cos", "accuracy_drop", "fid"} <= set(diag.columns)
    assert json.loads((project / "reports/prepare.json").read_text())["skipped"] == 0
    gap = pd.read_csv(project / "reports/domain_gap.csv")
    assert list(gap.columns) == ["metric", "source", "target", "value", "ci_low", "ci_high", "bias"]
    assert set(gap["metric"]) == {"fid", "kid", "mmd", "cmmd"} and len(gap) == 4 * 16
    assert ((gap.ci_low <= gap.value) & (gap.value <= gap.ci_high)).all()
    gap_json = json.loads((project / "reports/domain_gap.json").read_text())
    assert set(gap_json["clip_inception_score"]) == {"photo", "art_painting", "cartoon", "sketch"}
    assert gap_json["subset_size"]["used"] == 10

    sh(project, "dvc", "plots", "show", "-o", str(tmp_path / "plots"))  # every declared plot renders
    assert (tmp_path / "plots" / "index.html").exists()

    commit(project, "run")
    assert repro(project) == {"prepare"}  # nothing changed: only the rescan (file stats, from its cache) runs

    # --- a classifier or translation param reruns only evaluation
    edit_params(project, lambda p: p["classifier"].update(C=0.05))
    assert repro(project) == {"prepare", "evaluate", "diagnostics"}
    diff = sh(project, "dvc", "metrics", "diff", "--md")
    assert "reports/metrics.json" in diff and "single_source.logreg" in diff
    edit_params(project, lambda p: p["translate"].update(alpha=0.5, normalize_after=True))
    assert repro(project) == {"prepare", "evaluate", "diagnostics"}
    edit_params(project, lambda p: p["gap"].update(n_boot=3))
    assert repro(project) == {"prepare", "domain_gap", "diagnostics"}

    # --- PromptStyler: ArcFace params retrain the classifier only; K relearns the styles
    edit_params(project, lambda p: p["promptstyler"]["arcface"].update(m=0.3))
    assert repro(project) == {"prepare", "train_arcface", "evaluate", "diagnostics"}
    edit_params(project, lambda p: p["promptstyler"].update(k=2))
    ran = repro(project)  # diagnostics too, unless the accuracy table came out byte-identical
    assert {"prepare", "learn_styles", "train_arcface", "evaluate"} <= ran <= {
        "prepare", "learn_styles", "train_arcface", "evaluate", "diagnostics"}

    # --- prompts: re-embed prompts and what follows, never the images
    edit_params(project, lambda p: p["prompts"].update(dummy_nouns=["goose", "goldfish"]))
    assert repro(project) == {"prepare", "embed_prompts", "similarity", "evaluate", "domain_gap", "diagnostics"}

    # --- a MiniCLIP param with a transformers model: MiniCLIP is not in the DAG, nothing reruns
    edit_params(project, lambda p: p["clip"].update(epochs=2, lr=0.002))
    assert repro(project) == {"prepare"}

    # --- the same images at another data.root (copies, another folder): prepare only, and it reads no pixel
    moved = tmp_path / "relocated" / "pacs_copy"
    shutil.copytree(yaml.safe_load((project / "params.yaml").read_text())["data"]["root"], moved)
    before = (project / "data/manifest.parquet").read_bytes()
    edit_params(project, lambda p: p["data"].update(root=str(moved)))
    assert repro(project) == {"prepare"}
    assert (project / "data/manifest.parquet").read_bytes() == before
    assert pq.read_table(project / "data/paths.parquet").to_pandas()["path"].str.startswith(str(moved)).all()

    # --- another model: every embedding and everything after it
    other = build_random_clip(tmp_path / "clip_seed1", "tiny", seed=1)
    edit_params(project, lambda p: p["model"].update(name=str(other)))
    assert repro(project) == ALL - {"train_clip"}
    assert read_metadata(project / "features/images.parquet")["weight_sha256"] != meta["weight_sha256"]
    assert json.loads((project / "reports/embed.json").read_text())["embedded"] == 84

    # --- the pipeline's own CLIP: models/miniclip puts train_clip (models/dvc.yaml) upstream of the embeds
    edit_params(project, lambda p: p["model"].update(name="models/miniclip"))
    assert repro(project) == ALL
    ret = pd.read_csv(project / "reports/retrieval.csv")
    assert list(ret.columns) == ["pairing", "split", "n_images", "n_captions", "top1", "top5"]
    assert set(ret["split"]) == {"train", "test"} and (ret["n_captions"] == 28).all()
    assert (project / "models/miniclip/miniclip.json").is_file() and (project / "reports/clip_loss.png").is_file()
    assert read_metadata(project / "features/images.parquet")["dim"] == 16
    # now a MiniCLIP param retrains it and re-embeds with the new weights
    edit_params(project, lambda p: p["clip"].update(epochs=1))
    assert {"prepare", "train_clip", "embed_images", "embed_prompts", "learn_styles"} <= repro(project)
