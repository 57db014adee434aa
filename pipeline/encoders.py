"""Encoders behind one interface, and a registry (in the spirit of open_clip's model registry).

An encoder maps preprocessed image batches and lists of strings to vectors of one joint space:
E_I(x) and E_T(t) of CLIP (Radford et al., "Learning Transferable Visual Models From Natural
Language Supervision", ICML 2021). The default family is any CLIP-like model ``transformers``
loads (``get_image_features`` / ``get_text_features``), by hub id or local directory; other
families register a loader under a name (``register_encoder``).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch

from .errors import ModelLoadError
from .preprocess import Preprocess


class Encoder(Protocol):
    name: str
    dim: int
    device: str
    preprocess: Preprocess
    weight_hash: str

    def encode_images(self, pixels: np.ndarray) -> np.ndarray: ...
    def image_tower(self) -> torch.nn.Module: ...
    def encode_texts(self, texts: list[str]) -> np.ndarray: ...


_REGISTRY: dict[str, Callable[[str, str], Encoder]] = {}
MINICLIP_DIR = Path("models/miniclip")  # where stage train_clip writes the model ``model.name: miniclip`` loads


def register_encoder(name: str):
    """Decorator: make ``load_encoder(name)`` call ``loader(name, device)``."""
    def deco(loader):
        _REGISTRY[name] = loader
        return loader
    return deco


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"embed.device={device!r} but no CUDA device is available")
    return device


def load_encoder(name: str, device: str = "auto") -> Encoder:
    """Load a registered encoder, or a ``transformers`` CLIP-family model by hub id / local dir."""
    device = resolve_device(device)
    if name in _REGISTRY:
        return _REGISTRY[name](name, device)
    if name == "miniclip" or (Path(name) / "miniclip.json").is_file():
        from .miniclip import MiniClipEncoder  # the pipeline's own CLIP (stage train_clip)

        return MiniClipEncoder(name, device, path=MINICLIP_DIR if name == "miniclip" else name)
    return HFClipEncoder(name, device)


def state_dict_hash(model: torch.nn.Module) -> str:
    """sha256 over every parameter / buffer (names and bytes, sorted by name)."""
    h = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _features(out) -> torch.Tensor:
    """transformers 4 returns a tensor, transformers 5 an output whose pooler_output is projected."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class HFClipEncoder:
    """A CLIP-family ``transformers`` model. Never uses ``trust_remote_code``."""

    def __init__(self, name: str, device: str = "cpu", text_batch_size: int = 256):
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        self.name, self.device, self.text_batch_size = name, device, text_batch_size
        local = Path(name).is_dir()
        try:
            self.model = AutoModel.from_pretrained(name, trust_remote_code=False).to(device).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=False)
            processor = AutoImageProcessor.from_pretrained(name, trust_remote_code=False)
        except (OSError, ValueError) as exc:
            where = (f"the local directory {name!r} is not a complete transformers CLIP (config.json, "
                     f"model.safetensors, tokenizer and preprocessor_config.json)") if local else (
                f"{name!r} is not a local directory and could not be fetched from the Hugging Face hub "
                f"(offline, or not in the local HF cache)")
            raise ModelLoadError(
                f"model.name={name!r}: {where}. Point model.name in params.yaml at a local directory "
                f"saved with CLIPModel.save_pretrained (plus its tokenizer and image processor), or run "
                f"once with network access to fill the HF cache. Cause: {type(exc).__name__}: {exc}"
            ) from exc
        if not (hasattr(self.model, "get_image_features") and hasattr(self.model, "get_text_features")):
            raise ModelLoadError(f"model.name={name!r}: {type(self.model).__name__} is not a CLIP-family "
                                 "model (no get_image_features / get_text_features)")
        self.preprocess = Preprocess.from_processor(processor)
        self.weight_hash = state_dict_hash(self.model)
        self.dim = int(getattr(self.model.config, "projection_dim", 0) or self._probe_dim())

    def _probe_dim(self) -> int:
        return int(self.encode_texts(["a"]).shape[1])

    def image_tower(self) -> torch.nn.Module:
        """pixels (B, 3, H, W) -> E_I (B, dim) as one module (what the ONNX runtime exports)."""
        return ImageTower(self.model, "get_image_features")

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        return run_tower(self.image_tower(), pixels, self.device)

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        tok = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(self.device)
        return tok["input_ids"], tok.get("attention_mask")

    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """E_T of token ids, differentiable (used by PromptStyler's style learning)."""
        return _features(self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))

    def token_embedding(self) -> torch.nn.Module:
        """The text tower's token-embedding layer (where pseudo-word vectors are injected)."""
        return self.model.text_model.embeddings.token_embedding

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return encode_texts_batched(self, texts)


class ImageTower(torch.nn.Module):
    """pixels (B, 3, H, W) -> E_I (B, dim) through ``model.<method>``: the unit the engine runs or exports."""

    def __init__(self, model: torch.nn.Module, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return _features(getattr(self.model, self.method)(pixels))


@torch.inference_mode()
def run_tower(tower: torch.nn.Module, pixels: np.ndarray, device: str) -> np.ndarray:
    """Run an image tower on a float32 batch, in inference mode: (B, dim) float32."""
    x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).to(device)
    return tower(x).float().cpu().numpy()


def encode_texts_batched(encoder, texts: list[str]) -> np.ndarray:
    """E_T of ``texts`` through the encoder's ``tokenize`` / ``text_features``, ``text_batch_size`` at a time."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), encoder.text_batch_size):
            out.append(encoder.text_features(*encoder.tokenize(texts[i:i + encoder.text_batch_size])).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, encoder.dim), np.float32)


def provenance(encoder: Encoder) -> dict:
    """What produced a feature store: recorded in its Parquet schema metadata."""
    return {
        "model": encoder.name,
        "model_dir": os.path.abspath(encoder.name) if Path(encoder.name).is_dir() else None,
        "weight_sha256": encoder.weight_hash,
        "dim": encoder.dim,
        "preprocessing": encoder.preprocess.to_dict(),
        "torch": torch.__version__,
        "trained_on": getattr(encoder, "trained_on", None),  # set for a model trained on this dataset (MiniCLIP)
    }


def fetch(name: str, out_dir: str | Path) -> Path:
    """Save a transformers CLIP given by hub id (or directory) as a self-contained directory -- model
    (safetensors), tokenizer, image processor -- that ``model.name`` can name and DVC can depend on.
    Needs the network or a filled HF cache for a hub id; never ``trust_remote_code``."""
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    try:
        parts = [cls.from_pretrained(name, trust_remote_code=False) for cls in (AutoModel, AutoTokenizer,
                                                                                AutoImageProcessor)]
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot fetch {name!r} (offline, or not in the local HF cache): "
                             f"{type(exc).__name__}: {exc}") from exc
    for part in parts:
        part.save_pretrained(tmp)
    if out.exists():
        raise ModelLoadError(f"{out} already exists; remove it or choose another directory")
    tmp.rename(out)
    return out


if __name__ == "__main__":  # pragma: no cover - thin CLI
    import typer

    cli = typer.Typer(add_completion=False)

    @cli.command("fetch")
    def _fetch(name: str, out_dir: Path) -> None:
        """Save hub model NAME as directory OUT_DIR (then set model.name: OUT_DIR)."""
        print(fetch(name, out_dir))

    @cli.command("hash")
    def _hash(name: str) -> None:
        """Print the weight sha256 of model NAME."""
        print(load_encoder(name, "cpu").weight_hash)

    cli()
