"""Shared fixtures: a deterministic real-PACS subset and small random CLIPs in HF format."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach a model hub
if os.environ.get("PYTEST_XDIST_WORKER"):  # several workers on two cores: one thread each, no pool spinning against another
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"

REPO = Path(__file__).resolve().parents[1]
PACS = Path(os.environ.get("PACS_ROOT", REPO.parent / "shared" / "pacs"))


@pytest.fixture(scope="session")
def pacs_root() -> Path:
    if not (PACS / "photo").is_dir():
        pytest.fail(f"real PACS not found at {PACS} (set PACS_ROOT to <domain>/<class>/<image> folders)")
    return PACS


@pytest.fixture(scope="session")
def pacs_subset(pacs_root, tmp_path_factory) -> Path:
    """5 images per domain x class (140 images): the first files by name, symlinked."""
    from pipeline.data import make_subset

    return make_subset(pacs_root, tmp_path_factory.mktemp("pacs5"), per_class=5)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    from pipeline.randomclip import build_random_clip

    return build_random_clip(tmp_path_factory.mktemp("clip") / "tiny", "tiny", seed=0)


@pytest.fixture(scope="session")
def mini_encoder(tmp_path_factory):
    """A MiniCLIP with random image tower and projections; its text tower is the pretrained MiniLM."""
    import torch

    from pipeline.encoders import load_encoder
    from pipeline.miniclip import MiniCLIP, build_spec, load_tokenizer, save_miniclip

    torch.manual_seed(0)
    spec = build_spec("resnet", "minilm", embed_dim=32, image_size=32, image={"width": 8})
    path = save_miniclip(MiniCLIP(spec), load_tokenizer(spec), tmp_path_factory.mktemp("mini") / "miniclip")
    return load_encoder(f"miniclip:{path}", "cpu")
