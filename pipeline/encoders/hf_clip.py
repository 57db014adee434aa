"""OpenAI-style CLIP in ``transformers`` (``CLIPModel``): a local directory saved with ``save_pretrained``
(model, tokenizer, image processor). Prefix ``hf_clip:``; a bare directory whose ``config.json`` says
``model_type: clip``.

E_I(x) = visual_projection(vision_model(x).pooler_output), E_T(t) = get_text_features(t) (Radford et al.,
ICML 2021); ``pooled`` is ``vision_model(x).pooler_output``, the post-LayerNorm class token before the
projection; ``layer_<i>`` is ``post_layernorm`` of the class token of ``hidden_states[i]`` (0: the embeddings after
``pre_layrnorm``; the last equals ``pooled``). Text is tokenised as the CLIP processor does (padding to the longest prompt; the causal text
tower reads the end-of-text token, so padding never changes a prompt's features). Never
``trust_remote_code``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .base import (ENCODERS, Encoder, ModelLoadError, Preprocess, files_hash, layer_kind, pooled_output, read_json,
                   state_dict_hash)

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json",
                   "spiece.model"]


def load_transformers_parts(name: str, path: Path, what: str):
    """(model, tokenizer, image processor) of a local transformers directory; one clear line if incomplete."""
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    try:
        model = AutoModel.from_pretrained(path, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        processor = AutoImageProcessor.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError, ImportError) as exc:
        raise ModelLoadError(f"model.name={name!r}: {str(path)!r} is not a complete transformers {what} directory "
                             f"(config.json, model.safetensors, tokenizer and preprocessor_config.json); save one with "
                             f"`clipdg fetch HUB_ID DIR`. Cause: {type(exc).__name__}: {str(exc).splitlines()[0]}"
                             ) from exc
    return model, tokenizer, processor


@ENCODERS.register("hf_clip")
class HFClipEncoder(Encoder):
    model_types = ("clip",)
    padding: str | bool = True  # the CLIP processor's default: pad to the longest prompt of a batch

    @classmethod
    def detect(cls, path: Path) -> bool:
        return read_json(Path(path) / "config.json").get("model_type") in cls.model_types

    @classmethod
    def load(cls, name: str, path: Path, device: str) -> "HFClipEncoder":
        model, tokenizer, processor = load_transformers_parts(name, path, cls.name)
        return cls.from_parts(name, path, device, model, tokenizer, processor)

    @classmethod
    def from_parts(cls, name: str, path: Path | None, device: str, model, tokenizer, processor):
        if not (hasattr(model, "vision_model") and hasattr(model, "get_text_features")):
            raise ModelLoadError(f"model.name={name!r}: {type(model).__name__} is not a {cls.name} model "
                                 "(no vision_model / get_text_features)")
        enc = cls()
        enc.name, enc.path, enc.device = name, path, device
        enc.model, enc.tokenizer = model.to(device).eval(), tokenizer
        enc.preprocess = Preprocess.from_processor(processor)
        enc.weight_hash = state_dict_hash(enc.model)
        enc.dim = int(enc._text_dim())
        enc.pooled_dim = int(model.config.vision_config.hidden_size)
        enc.logit_scale = float(model.logit_scale.detach().exp())
        if getattr(model, "logit_bias", None) is not None:
            enc.logit_bias = float(model.logit_bias.detach().reshape(-1)[0])
        enc.text = {"tokenizer_sha256": files_hash(path, TOKENIZER_FILES) if path else None,
                    "padding": enc.padding, "max_length": enc.max_length()}
        return enc

    def _text_dim(self) -> int:
        return getattr(self.model.config, "projection_dim", 0) or int(self.encode_texts(["a"]).shape[1])

    def max_length(self) -> int:
        """The tokenizer's maximum length, capped by the text tower's position embeddings (77 for CLIP)."""
        cfg = getattr(self.model.config, "text_config", None)
        limits = [x for x in (getattr(self.tokenizer, "model_max_length", None),
                              getattr(cfg, "max_position_embeddings", None)) if x and x < 10**6]
        return int(min(limits)) if limits else 77

    def blocks(self) -> list[tuple[str, int]]:
        cfg = self.model.config.vision_config
        return [("embeddings", cfg.hidden_size)] + [(f"block {i}", cfg.hidden_size)
                                                    for i in range(1, cfg.num_hidden_layers + 1)]

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.model.visual_projection(pooled)

    def pool_block(self, hidden: torch.Tensor) -> torch.Tensor:
        """A block's output pooled as the tower pools its last one: the class token through the final LayerNorm."""
        return self.model.vision_model.post_layernorm(hidden[:, 0])

    def image_features(self, pixels: torch.Tensor, layers: tuple[int, ...] = ()) -> dict[str, torch.Tensor]:
        out = self.model.vision_model(pixel_values=pixels, **({"output_hidden_states": True} if layers else {}))
        pooled = out.pooler_output
        return {"projected": self.project(pooled), "pooled": pooled,
                **{layer_kind(i): self.pool_block(out.hidden_states[i]) for i in layers}}

    def tokenize(self, texts: list[str]):
        tok = self.tokenizer(list(texts), padding=self.padding, max_length=self.max_length(), truncation=True,
                             return_tensors="pt").to(self.device)
        return tok["input_ids"], tok.get("attention_mask")

    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        kw = {} if attention_mask is None else {"attention_mask": attention_mask}
        return pooled_output(self.model.get_text_features(input_ids=input_ids, **kw))

    def token_embedding(self) -> torch.nn.Module:
        return self.model.text_model.embeddings.token_embedding
