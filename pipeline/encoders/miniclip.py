"""MiniCLIP, the pipeline's own small CLIP (seed 001), served from the directory stage ``train_clip`` writes
(``miniclip.json``, ``model.safetensors``, ``tokenizer/``). Prefix ``miniclip:``; a bare directory holding a
``miniclip.json``. Its architecture and training live in :mod:`pipeline.miniclip` / :mod:`pipeline.clip_training`;
this module only loads it.

E_I(x) = normalize(P_I f_I(x)) (``projected``), f_I(x) the image tower's pooled output (``pooled``);
E_T(t) = normalize(P_T f_T(t)); ``layer_<i>``: the ResNet's stem (0) and stages 1-4 averaged over space, or the ViT's
embeddings (0) and blocks through the final LayerNorm of the class token (the last equals ``pooled``).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..miniclip import CLIP_MEAN, CLIP_STD, load_miniclip, tokenize
from .base import ENCODERS, Encoder, ModelLoadError, Preprocess, files_hash, layer_kind, state_dict_hash


@ENCODERS.register("miniclip")
class MiniClipEncoder(Encoder):

    @classmethod
    def detect(cls, path: Path) -> bool:
        return (Path(path) / "miniclip.json").is_file()

    @classmethod
    def load(cls, name: str, path: Path, device: str) -> "MiniClipEncoder":
        path = Path(path)
        if not cls.detect(path):
            raise ModelLoadError(f"model.name={name!r}: no trained MiniCLIP at {str(path)!r} (miniclip.json missing); "
                                 "stage train_clip writes models/miniclip (`dvc repro`)")
        enc = cls()
        enc.name, enc.path, enc.device = name, path, device
        enc.model, enc.tokenizer = load_miniclip(path, device)
        s = enc.model.spec["image_size"]
        enc.preprocess = Preprocess(shortest_edge=s, resize_hw=None, crop_hw=(s, s), resample=3,
                                    rescale_factor=1 / 255, mean=CLIP_MEAN, std=CLIP_STD)
        enc.dim, enc.pooled_dim = enc.model.spec["embed_dim"], enc.model.image.out_dim
        enc.weight_hash = state_dict_hash(enc.model)
        enc.logit_scale = float(enc.model.logit_scale().detach())
        enc.trained_on = enc.model.spec.get("trained_on")  # the split it was trained on (train_clip)
        enc.text = {"tokenizer_sha256": files_hash(path / "tokenizer"), "padding": "longest",
                    "max_length": enc.model.spec["max_length"]}
        return enc

    def blocks(self) -> list[tuple[str, int]]:
        return self.model.image.block_names()

    def image_features(self, pixels: torch.Tensor, layers: tuple[int, ...] = ()) -> dict[str, torch.Tensor]:
        pooled, per_layer = self.model.image.forward_blocks(pixels, layers) if layers else (self.model.image(pixels), {})
        return {"projected": nn.functional.normalize(self.model.image_proj(pooled), dim=-1), "pooled": pooled,
                **{layer_kind(i): f for i, f in per_layer.items()}}

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = tokenize(self.tokenizer, texts, self.model.spec["max_length"])
        return ids.to(self.device), mask.to(self.device)

    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(input_ids, attention_mask)

    def token_embedding(self) -> nn.Module:
        return self.model.text.model.get_input_embeddings()
