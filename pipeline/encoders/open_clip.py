"""open_clip checkpoints (LAION / DataComp / OpenAI ViT CLIPs; Cherti et al., CVPR 2023), loaded by
**conversion to ``transformers``' CLIPModel** -- no ``open_clip`` import. Prefix ``open_clip:``; a bare
directory holding ``open_clip_config.json`` (the layout of open_clip's ``hf-hub:`` repositories: that file,
with ``model_cfg`` and ``preprocess_cfg``, plus ``open_clip_model.safetensors`` or
``open_clip_pytorch_model.bin``).

Why a conversion: ``open_clip`` imports torchvision, and no torchvision wheel on the package index imports
beside the pinned CPU torch (docs/methods.md). A ViT CLIP of open_clip is, weight for weight, the
architecture of ``transformers``' CLIPModel: patch conv, class token, learned positions, pre-LayerNorm,
pre-norm residual blocks (fused q/k/v in_proj split into q, k, v), post-LayerNorm of the class token,
projection; text: token + position embeddings, causal blocks, final LayerNorm, the end-of-text token (the
largest id, open_clip's ``argmax`` pooling), projection. :func:`convert` maps the state dict and builds the
configs; configurations with no counterpart there (ResNet or timm towers, Hugging Face text towers,
attentional pooling, layer scale, a text CLS token, SigLIP-style logit bias, ...) are refused by name.
``clipdg convert`` writes the converted model as a transformers directory; the test checks the features
equal open_clip's own ``encode_image`` / ``encode_text``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .base import ENCODERS, ModelLoadError, files_hash, read_json
from .hf_clip import HFClipEncoder

CONFIG_NAME = "open_clip_config.json"
WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

# open_clip config keys whose non-default value has no transformers CLIPModel counterpart
_VISION_DEFAULTS = {"ls_init_value": None, "patch_dropout": 0.0, "attentional_pool": False, "no_ln_pre": False,
                    "pos_embed_type": "learnable", "final_ln_after_pool": False, "pool_type": "tok",
                    "act_kwargs": None, "norm_kwargs": None, "block_type": None, "qk_norm": False,
                    "scaled_cosine_attn": False, "scale_heads": False, "scale_attn_inner": False, "scale_attn": False,
                    "scale_fc": False, "timm_model_name": None}
_TEXT_DEFAULTS = {"ls_init_value": None, "embed_cls": False, "no_causal_mask": False, "final_ln_after_pool": False,
                  "pool_type": "argmax", "proj_bias": False, "proj_type": "linear", "act_kwargs": None,
                  "norm_kwargs": None, "block_type": None, "qk_norm": False, "scaled_cosine_attn": False,
                  "scale_heads": False, "scale_attn_inner": False, "scale_attn": False, "scale_fc": False,
                  "hf_model_name": None, "hf_tokenizer_name": None}
_MODEL_DEFAULTS = {"init_logit_bias": None, "custom_text": False, "cast_dtype": None}


def _refuse(where: str, cfg: dict, defaults: dict, src) -> None:
    for key, default in defaults.items():
        value = cfg.get(key, default)
        if value != default and not (default is None and value in ("", "default")) and \
                not (key == "patch_dropout" and not value):
            raise ModelLoadError(f"{src}: open_clip {where}.{key}={value!r} has no transformers CLIPModel counterpart; "
                                 "only ViT CLIPs with open_clip's standard blocks convert")


def read_checkpoint(src: str | Path) -> tuple[dict, dict, dict]:
    """(model_cfg, preprocess_cfg, state dict) of an open_clip checkpoint directory."""
    src = Path(src)
    cfg = read_json(src / CONFIG_NAME)
    if "model_cfg" not in cfg:
        raise ModelLoadError(f"{src}: no {CONFIG_NAME} with a model_cfg (open_clip's hf-hub layout)")
    weights = next((src / n for n in WEIGHT_NAMES if (src / n).is_file()), None)
    if weights is None:
        raise ModelLoadError(f"{src}: no open_clip weights ({' or '.join(WEIGHT_NAMES)})")
    if weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(weights))
    else:
        state = torch.load(weights, map_location="cpu", weights_only=True)  # tensors only, never code
    state = state.get("state_dict", state)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return cfg["model_cfg"], cfg.get("preprocess_cfg", {}), state


def hf_configs(model_cfg: dict, src="open_clip") -> dict:
    """The transformers CLIPConfig kwargs of an open_clip model config (refusing what has no counterpart)."""
    v, t = dict(model_cfg.get("vision_cfg", {})), dict(model_cfg.get("text_cfg", {}))
    _refuse("model_cfg", model_cfg, _MODEL_DEFAULTS, src)
    _refuse("vision_cfg", v, _VISION_DEFAULTS, src)
    _refuse("text_cfg", t, _TEXT_DEFAULTS, src)
    if not isinstance(v.get("layers", 12), int):
        raise ModelLoadError(f"{src}: open_clip vision_cfg.layers={v['layers']!r} is a ResNet tower; only ViT towers convert")
    act = "quick_gelu" if model_cfg.get("quick_gelu", False) else "gelu"
    vw, tw = v.get("width", 768), t.get("width", 512)
    image_size, patch = v.get("image_size", 224), v.get("patch_size", 16)
    if not isinstance(image_size, int) or not isinstance(patch, int):
        raise ModelLoadError(f"{src}: open_clip vision_cfg image_size / patch_size must be single numbers")
    vision = dict(hidden_size=vw, intermediate_size=int(vw * v.get("mlp_ratio", 4.0)), num_hidden_layers=v.get("layers", 12),
                  num_attention_heads=vw // v.get("head_width", 64), image_size=image_size, patch_size=patch,
                  hidden_act=act, layer_norm_eps=1e-5)
    text = dict(vocab_size=t.get("vocab_size", 49408), hidden_size=tw, intermediate_size=int(tw * t.get("mlp_ratio", 4.0)),
                num_hidden_layers=t.get("layers", 12), num_attention_heads=t.get("heads", 8),
                max_position_embeddings=t.get("context_length", 77), hidden_act=act, layer_norm_eps=1e-5,
                bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
    return {"vision_config": vision, "text_config": text, "projection_dim": model_cfg["embed_dim"]}


def _blocks(state: dict, src: str, dst: str, n: int) -> dict:
    out = {}
    for i in range(n):
        s, d = f"{src}.resblocks.{i}", f"{dst}.layers.{i}"
        q, k, v = state[f"{s}.attn.in_proj_weight"].chunk(3)
        qb, kb, vb = state[f"{s}.attn.in_proj_bias"].chunk(3)
        out.update({f"{d}.self_attn.q_proj.weight": q, f"{d}.self_attn.k_proj.weight": k,
                    f"{d}.self_attn.v_proj.weight": v, f"{d}.self_attn.q_proj.bias": qb,
                    f"{d}.self_attn.k_proj.bias": kb, f"{d}.self_attn.v_proj.bias": vb})
        for a, b in (("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                     ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
            out[f"{d}.{b}.weight"], out[f"{d}.{b}.bias"] = state[f"{s}.{a}.weight"], state[f"{s}.{a}.bias"]
    return out


def convert_state_dict(state: dict, n_vision: int, n_text: int) -> dict:
    """open_clip CLIP state dict -> transformers CLIPModel state dict (q/k/v split, projections transposed)."""
    out = {
        "vision_model.embeddings.class_embedding": state["visual.class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": state["visual.conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": state["visual.positional_embedding"],
        "vision_model.pre_layrnorm.weight": state["visual.ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": state["visual.ln_pre.bias"],
        "vision_model.post_layernorm.weight": state["visual.ln_post.weight"],
        "vision_model.post_layernorm.bias": state["visual.ln_post.bias"],
        "visual_projection.weight": state["visual.proj"].T.contiguous(),
        "text_model.embeddings.token_embedding.weight": state["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": state["positional_embedding"],
        "text_model.final_layer_norm.weight": state["ln_final.weight"],
        "text_model.final_layer_norm.bias": state["ln_final.bias"],
        "text_projection.weight": state["text_projection"].T.contiguous(),
        "logit_scale": state["logit_scale"].reshape(()),
    }
    out.update(_blocks(state, "visual.transformer", "vision_model.encoder", n_vision))
    out.update(_blocks(state, "transformer", "text_model.encoder", n_text))
    return out


def convert(src: str | Path):
    """(CLIPModel, CLIPTokenizer, CLIPImageProcessor) equal to the open_clip checkpoint in ``src``."""
    import tempfile

    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    from ..randomclip import CLIP_IMAGE_PROCESSOR, write_clip_tokenizer_files

    model_cfg, pre, state = read_checkpoint(src)
    kwargs = hf_configs(model_cfg, str(src))
    model = CLIPModel(CLIPConfig(**kwargs)).eval()
    converted = convert_state_dict(state, kwargs["vision_config"]["num_hidden_layers"],
                                   kwargs["text_config"]["num_hidden_layers"])
    missing, unexpected = model.load_state_dict(converted, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ModelLoadError(f"{src}: open_clip weights do not map onto CLIPModel (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
    if pre.get("resize_mode", "shortest") != "shortest" or pre.get("interpolation", "bicubic") != "bicubic":
        raise ModelLoadError(f"{src}: preprocess_cfg resize_mode / interpolation other than shortest / bicubic")
    size = kwargs["vision_config"]["image_size"]
    processor = CLIPImageProcessor(**{**{k: v for k, v in CLIP_IMAGE_PROCESSOR.items() if k != "image_processor_type"},
                                      "size": {"shortest_edge": size}, "crop_size": {"height": size, "width": size},
                                      "image_mean": list(pre.get("mean", OPENAI_MEAN)),
                                      "image_std": list(pre.get("std", OPENAI_STD))})
    with tempfile.TemporaryDirectory() as tmp:
        write_clip_tokenizer_files(tmp)
        tokenizer = CLIPTokenizer(f"{tmp}/vocab.json", f"{tmp}/merges.txt", pad_token="<|endoftext|>",
                                  model_max_length=kwargs["text_config"]["max_position_embeddings"])
    return model, tokenizer, processor


def save_converted(src: str | Path, out: str | Path) -> Path:
    """Write the converted model as a transformers CLIP directory (model.safetensors, tokenizer, processor)."""
    import shutil

    out = Path(out)
    if out.exists():
        raise ModelLoadError(f"{out} already exists; remove it or choose another directory")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for part in convert(src):
        part.save_pretrained(tmp)
    (tmp / "converted_from.json").write_text(json.dumps({"open_clip": str(Path(src).resolve()),
                                                         CONFIG_NAME: read_json(Path(src) / CONFIG_NAME)}, indent=1))
    tmp.rename(out)
    return out


@ENCODERS.register("open_clip")
class OpenClipEncoder(HFClipEncoder):

    @classmethod
    def detect(cls, path: Path) -> bool:
        return (Path(path) / CONFIG_NAME).is_file()

    @classmethod
    def load(cls, name: str, path: Path, device: str) -> "OpenClipEncoder":
        model, tokenizer, processor = convert(path)
        enc = cls.from_parts(name, None, device, model, tokenizer, processor)
        enc.path = path
        enc.text = {**enc.text, "tokenizer_sha256": files_hash(path, [CONFIG_NAME])}  # CLIP's BPE, its context length
        return enc
