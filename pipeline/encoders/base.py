"""The encoder contract every model family implements, and the helpers the families share.

An encoder maps preprocessed image batches and lists of strings into one joint space, E_I(x) and E_T(t)
(Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021).
Its image tower yields these kinds of image features, all from one forward pass:

* ``projected`` -- E_I(x), in the joint image-text space (what zero-shot and the text operators need);
* ``pooled``    -- the tower's pooled representation *before* the projection into the joint space
  (the CLIP paper's linear-probe protocol reads these, §3.2 / App. A.3);
* ``layer_<i>`` -- block ``i`` of the tower (:meth:`Encoder.blocks`: 0 is the input to the first block), pooled as
  the family pools its last block (a ViT: the class token through the final LayerNorm, so the last block's
  equals ``pooled``; a ResNet: the global average of the stage's map). Zeiler & Fergus (ECCV 2014) ask which
  layer transfers; ``embed.layers`` stores them, stage ``layerwise`` answers it.

A family is one module of this package registered in :data:`ENCODERS` under the prefix that selects it
in ``model.name`` (``hf_clip:DIR``, ``siglip:DIR``, ``open_clip:DIR``, ``miniclip:DIR``); a bare
directory is claimed by the family whose :meth:`Encoder.detect` recognises it.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..errors import ModelLoadError
from ..preprocess import Preprocess
from ..registry import Registry

ENCODERS: Registry = Registry("encoder family", "model.name", __package__)
FEATURE_KINDS = ("projected", "pooled")  # plus layer_<i> (layer_kind)
LAYER_PREFIX = "layer_"


def layer_kind(i: int) -> str:
    return f"{LAYER_PREFIX}{int(i)}"


def layer_index(kind: str) -> int | None:
    """``layer_3`` -> 3; another kind -> None."""
    rest = kind[len(LAYER_PREFIX):] if kind.startswith(LAYER_PREFIX) else ""
    return int(rest) if rest.isdigit() else None


class Encoder:
    """Base contract. A family sets the class attributes and implements :meth:`load`, :meth:`image_features`,
    :meth:`tokenize`, :meth:`text_features` and :meth:`token_embedding`.

    Class attributes: ``name`` (its registry prefix, also the instance's ``family``), ``objective`` -- ``softmax`` (CLIP's InfoNCE: image-text
    logits are calibrated across the candidates of a softmax) or ``sigmoid`` (SigLIP: every pair is an
    independent binary decision, logit s cos + b).

    Instance attributes after :meth:`load`: ``name`` (the ``model.name`` it was loaded by), ``path``,
    ``device``, ``dim`` (joint-space width), ``pooled_dim``, ``preprocess`` (:class:`Preprocess`),
    ``weight_hash`` (sha256 of every weight), ``logit_scale`` s and ``logit_bias`` b (floats), ``text`` (how
    text is tokenised: tokenizer file hash, padding, max length), ``text_batch_size``.
    """

    name: str = ""  # on the class: its registry prefix (set by ENCODERS.register); on an instance: model.name
    objective: ClassVar[str] = "softmax"
    text_batch_size = 256
    logit_bias = 0.0
    text: dict = {}  # how text is tokenised (set by each family's load)
    trained_on = None  # set for a model trained on this dataset's train split (MiniCLIP)

    @property
    def family(self) -> str:
        """The registry prefix of this encoder's family."""
        return type(self).name

    # -------------------------------------------------------------------------------- the contract
    @classmethod
    def detect(cls, path: Path) -> bool:
        """True when directory ``path`` holds a model of this family (for a ``model.name`` without prefix)."""
        return False

    @classmethod
    def load(cls, name: str, path: Path, device: str) -> "Encoder":
        raise NotImplementedError

    def image_features(self, pixels: torch.Tensor, layers: tuple[int, ...] = ()) -> dict[str, torch.Tensor]:
        """{kind: (B, d_kind)} for every kind of :data:`FEATURE_KINDS` and ``layer_<i>`` for each of ``layers``,
        from one forward pass."""
        raise NotImplementedError

    def blocks(self) -> list[tuple[str, int]]:
        """(name, width) of each block whose pooled output ``layer_<i>`` can be stored, in depth order (index 0: the
        input of the first block, e.g. a ViT's embeddings, a ResNet's stem). [] for a family that exposes none."""
        return []

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(input_ids, attention_mask or None) on the encoder's device, as the model's own processor makes them."""
        raise NotImplementedError

    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """E_T of token ids, differentiable (PromptStyler learns through it)."""
        raise NotImplementedError

    def token_embedding(self) -> torch.nn.Module:
        """The text tower's token-embedding layer (where pseudo-word vectors are injected)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------ shared behaviour
    def image_tower(self, kinds: tuple[str, ...] = ("projected",)) -> torch.nn.Module:
        """pixels (B, 3, H, W) -> one (B, d) tensor per kind, as one module (what the ONNX runtime exports)."""
        return ImageTower(self, kinds)

    def encode_images(self, pixels: np.ndarray, kinds: tuple[str, ...] = ("projected",)):
        """float32 features of a preprocessed batch: one array for one kind, a dict for several."""
        out = run_tower(self.image_tower(kinds), pixels, self.device)
        return out[0] if len(kinds) == 1 else dict(zip(kinds, out))

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """E_T of ``texts``, ``text_batch_size`` at a time: float32 (n, dim)."""
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.text_batch_size):
                ids, mask = self.tokenize(texts[i:i + self.text_batch_size])
                out.append(self.text_features(ids, mask).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def kind_dim(self, kind: str) -> int:
        i = layer_index(kind)
        if i is not None:
            return self.blocks()[i][1]
        return self.dim if kind == "projected" else self.pooled_dim

    def check_layers(self, layers) -> tuple[int, ...]:
        """``embed.layers`` (``all``, a list of block indices, or none) -> sorted indices; one line naming the key
        when an index is out of range or the family exposes no blocks."""
        blocks = self.blocks()
        if layers in (None, [], ()):
            return ()
        if layers == "all":
            if not blocks:
                raise ValueError(f"embed.layers: all, but the {self.family} family exposes no blocks")
            return tuple(range(len(blocks)))
        bad = [i for i in layers if not 0 <= int(i) < len(blocks)]
        if bad:
            raise ValueError(f"embed.layers: block {bad[0]} does not exist; {self.name} has blocks 0..{len(blocks) - 1} "
                             f"({', '.join(n for n, _ in blocks) or 'none'})")
        return tuple(sorted({int(i) for i in layers}))


class ImageTower(torch.nn.Module):
    """pixels -> tuple of the encoder's ``kinds`` of image features: the unit the engine runs or exports."""

    def __init__(self, encoder: Encoder, kinds: tuple[str, ...]):
        super().__init__()
        unknown = [k for k in kinds if k not in FEATURE_KINDS and layer_index(k) is None]
        if unknown or not kinds:
            raise ValueError(f"image feature kinds {list(kinds)}: choose from {list(FEATURE_KINDS)} or layer_<i>")
        self.encoder, self.kinds = encoder, tuple(kinds)
        self.layers = tuple(i for i in map(layer_index, kinds) if i is not None)
        owned = getattr(encoder, "model", None)
        self.model = owned if isinstance(owned, torch.nn.Module) else None  # registered: .eval() reaches it

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.encoder.image_features(pixels, self.layers) if self.layers else self.encoder.image_features(pixels)
        return tuple(feats[k] for k in self.kinds)


@torch.inference_mode()
def run_tower(tower: torch.nn.Module, pixels: np.ndarray, device: str) -> tuple[np.ndarray, ...]:
    """Run an image tower on a float32 batch, in inference mode: one float32 (B, d) array per output."""
    x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).to(device)
    out = tower(x)
    return tuple(o.float().cpu().numpy() for o in (out if isinstance(out, tuple) else (out,)))


def pooled_output(out) -> torch.Tensor:
    """transformers 4 returns a tensor from ``get_*_features``, transformers 5 an output whose ``pooler_output``
    holds the features."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def state_dict_hash(model: torch.nn.Module) -> str:
    """sha256 over every parameter / buffer (names and bytes, sorted by name)."""
    h = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def files_hash(folder: str | Path, names: list[str] | None = None) -> str:
    """sha256 over the names and bytes of the files of ``folder`` (recursively, sorted; or only ``names``)."""
    folder = Path(folder)
    files = sorted(folder / n for n in names if (folder / n).is_file()) if names is not None else \
        sorted(f for f in folder.rglob("*") if f.is_file())
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(folder)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"embed.device={device!r} but no CUDA device is available")
    return device


def provenance(encoder: Encoder) -> dict:
    """What produced a feature store: recorded in its Parquet schema metadata."""
    path = getattr(encoder, "path", None)
    return {
        "model": encoder.name,
        "family": encoder.family,
        "model_dir": os.path.abspath(path) if path is not None and Path(path).is_dir() else None,
        "weight_sha256": encoder.weight_hash,
        "dim": encoder.dim,
        "pooled_dim": encoder.pooled_dim,
        "preprocessing": encoder.preprocess.to_dict(),
        "objective": encoder.objective,
        "logit_scale": round(float(encoder.logit_scale), 6),
        "logit_bias": round(float(encoder.logit_bias), 6),
        "torch": torch.__version__,
        "trained_on": encoder.trained_on,
    }


def fingerprint(encoder: Encoder) -> dict:
    """Everything about a model that changes a feature it computes, and nothing about where it lives: the
    content of ``models/model.json`` that every embedding stage depends on."""
    return {"family": encoder.family, "weight_sha256": encoder.weight_hash, "dim": encoder.dim,
            "pooled_dim": encoder.pooled_dim, "preprocessing": encoder.preprocess.to_dict(),
            "objective": encoder.objective, "logit_scale": round(float(encoder.logit_scale), 6),
            "logit_bias": round(float(encoder.logit_bias), 6), "text": encoder.text,
            "trained_on": encoder.trained_on}


__all__ = ["ENCODERS", "FEATURE_KINDS", "LAYER_PREFIX", "Encoder", "layer_index", "layer_kind", "ImageTower", "ModelLoadError", "Preprocess", "files_hash",
           "fingerprint", "pooled_output", "provenance", "read_json", "resolve_device", "run_tower",
           "state_dict_hash"]
