"""One entry point to load a model: :func:`load_encoder`, dispatching on a prefix of ``model.name`` (in the spirit
of open_clip's ``hf-hub:`` and clip-retrieval's ``hf_clip:`` / ``open_clip:``), one module per family behind
the :class:`~pipeline.encoders.base.Encoder` contract:

=============  =========================================  ==========================================
prefix         family (module)                            a bare directory is this family when it has
=============  =========================================  ==========================================
``hf_clip:``   transformers CLIPModel (:mod:`.hf_clip`)    ``config.json`` with ``model_type: clip``
``siglip:``    transformers SiglipModel (:mod:`.siglip`)   ``config.json`` with ``model_type: siglip``
``open_clip:`` open_clip ViT CLIP, converted (:mod:`.open_clip`)  ``open_clip_config.json``
``miniclip:``  the pipeline's own CLIP (:mod:`.miniclip`)  ``miniclip.json``
=============  =========================================  ==========================================

A model is always a local directory (so that its content can be fingerprinted: stage ``model`` writes
``models/model.json``, which every embedding stage depends on). ``clipdg fetch`` saves a hub model as one.
A new family is one module here registering an :class:`Encoder` subclass with ``@ENCODERS.register(prefix)``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import ModelLoadError, ParamsError
from ..params import MINICLIP_DIR as MINICLIP
from ..params import check_model_name, split_model_name

MINICLIP_DIR = Path(MINICLIP)  # what stage train_clip writes
_FROM_BASE = {"ENCODERS", "FEATURE_KINDS", "Encoder", "fingerprint", "provenance", "resolve_device", "run_tower",
              "state_dict_hash"}


def __getattr__(name: str):
    """The contract and the registry (:mod:`.base`), imported on first use: stage model answers a fingerprint
    from its cache without importing torch or any model code."""
    if name in _FROM_BASE:
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve_model(name: str) -> tuple[str, Path]:
    """(family, directory) of ``model.name``: the prefix's family, or the family that recognises the directory.
    One line naming ``model.name`` when the directory is missing or no family claims it."""
    from .base import ENCODERS

    family = split_model_name(name)[0]
    if family is not None and family not in ENCODERS:
        ENCODERS[family]  # the registry's one-line error, with the closest prefix
    path = check_model_name(name)
    if (path / "NOT_TRAINED.json").is_file():
        raise ModelLoadError(f"model.name={name!r}: {str(path)!r} holds no trained MiniCLIP (stage train_clip trained "
                             "none: model.name named another model when it last ran); run `dvc repro`")
    if family is None:
        family = next((f for f in ENCODERS.names() if ENCODERS[f].detect(path)), None)
        if family is None:
            raise ModelLoadError(f"model.name={name!r}: {str(path)!r} is no model directory of any family "
                                 f"({describe_families()}); give a prefix or fix the directory")
    elif not ENCODERS[family].detect(path):
        raise ModelLoadError(f"model.name={name!r}: {str(path)!r} is not a {family} directory ({describe_families()})")
    return family, path


def describe_families() -> str:
    from .base import ENCODERS

    marks = {"hf_clip": "config.json model_type clip", "siglip": "config.json model_type siglip",
             "open_clip": "open_clip_config.json", "miniclip": "miniclip.json"}
    return ", ".join(f"{f}: {marks.get(f, 'see its module')}" for f in ENCODERS.names())


def load_encoder(name: str, device: str = "auto"):
    """The encoder ``model.name`` names, on ``device`` (``auto``: the GPU when one is visible)."""
    from .base import ENCODERS, resolve_device

    family, path = resolve_model(name)
    return ENCODERS[family].load(name, path, resolve_device(device))


def _code_version() -> bytes:
    """The source of the modules that compute a fingerprint: an edit there recomputes every cached one."""
    here = Path(__file__).resolve().parent
    return b"".join(f.read_bytes() for f in sorted([*here.glob("*.py"), here.parent / "miniclip.py"]))


def stat_key(prefix: str | None, path: Path) -> str:
    """sha256 of the family prefix (or none), the fingerprinting code and every model file's (relative path,
    size, mtime): what git and DVC use to skip rehashing. The family a bare directory gets is a function of its
    files, so the key fixes it too."""
    h = hashlib.sha256(str(prefix).encode() + _code_version())
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def model_fingerprint(name: str, cache_dir: str | Path | None = None) -> dict:
    """:func:`~pipeline.encoders.base.fingerprint` of the model ``model.name`` names, answered from
    ``cache_dir`` when no file of the model directory changed (size, mtime) since it was last computed."""
    from ..store import write_json

    path = check_model_name(name)  # no model code imported: a cache hit costs file stats
    cached = Path(cache_dir) / f"{stat_key(split_model_name(name)[0], path)}.json" if cache_dir else None
    if cached is not None and cached.is_file():
        return json.loads(cached.read_text())
    from .base import fingerprint

    fp = fingerprint(load_encoder(name, "cpu"))
    if cached is not None:
        write_json(cached, fp)
    return fp


def load_checked_encoder(name: str, device: str, model_json: str | Path):
    """:func:`load_encoder`, refused if its weights are not those ``model_json`` (stage model's output) records:
    the stage's dependency would then describe another model."""
    enc = load_encoder(name, device)
    want = json.loads(Path(model_json).read_text()).get("weight_sha256") if Path(model_json).is_file() else None
    if want != enc.weight_hash:
        raise ModelLoadError(f"model.name={name!r} loads weights {enc.weight_hash[:12]} but {model_json} records "
                             f"{str(want)[:12]}; run `dvc repro` (stage model refreshes it)")
    return enc


def fetch(name: str, out_dir: str | Path) -> Path:
    """Save a model given by hub id as a self-contained directory ``model.name`` can name: a transformers
    CLIP / SigLIP (model as safetensors, tokenizer, image processor) for ``org/name``, or an open_clip
    checkpoint (``open_clip_config.json`` + weights) for ``hf-hub:org/name``. Needs the network or a filled
    HF cache; never ``trust_remote_code``."""
    out = Path(out_dir)
    if out.exists():
        raise ModelLoadError(f"{out} already exists; remove it or choose another directory")
    tmp = out.with_name(out.name + ".tmp")
    try:
        if name.startswith("hf-hub:"):
            from huggingface_hub import snapshot_download

            snapshot_download(name.removeprefix("hf-hub:"), local_dir=tmp,
                              allow_patterns=["open_clip_config.json", "open_clip_model.safetensors"])
        else:
            from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

            for cls in (AutoModel, AutoTokenizer, AutoImageProcessor):
                cls.from_pretrained(name, trust_remote_code=False).save_pretrained(tmp)
    except (OSError, ValueError, ImportError) as exc:
        raise ModelLoadError(f"cannot fetch {name!r} (offline, or not in the local HF cache): "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    tmp.rename(out)
    return out


__all__ = ["ENCODERS", "FEATURE_KINDS", "MINICLIP_DIR", "Encoder", "ModelLoadError", "ParamsError", "fetch",
           "fingerprint", "load_checked_encoder", "load_encoder", "model_fingerprint", "provenance", "resolve_device",
           "resolve_model", "run_tower", "split_model_name", "state_dict_hash"]
