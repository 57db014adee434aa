"""Small randomly initialised CLIPs saved in Hugging Face format, with the real CLIP vocabulary.

No model hub is reachable on our machines, so tests, CI and benchmarks build their CLIPs here:
architecture from a preset, weights from a fixed seed, tokenizer files (``vocab.json``,
``merges.txt``) rebuilt from the BPE table that ``open_clip_torch`` ships, so token ids are
exactly those of OpenAI's CLIP tokenizer (Radford et al., 2021).
"""
from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

def _tower(hidden: int, layers: int, heads: int, intermediate: int | None = None, **extra) -> dict:
    return dict(hidden_size=hidden, intermediate_size=intermediate or 4 * hidden, num_hidden_layers=layers,
                num_attention_heads=heads, **extra)


_VISION = dict(image_size=224, patch_size=32)
_TEXT = dict(max_position_embeddings=77)

#: name -> (vision kwargs, text kwargs, projection_dim).
PRESETS: dict[str, tuple[dict, dict, int]] = {
    "tiny": (_tower(64, 2, 4, 128, **_VISION), _tower(64, 2, 4, 128, **_TEXT), 64),
    # the tiny towers with MiniCLIP's 128-d joint space (full rank): benchmarks of the evaluation
    "small-128": (_tower(128, 2, 4, 256, **_VISION), _tower(128, 2, 4, 256, **_TEXT), 128),
    # two-layer towers, full-rank 512-d joint space like ViT-B/32: full-PACS features in minutes,
    # for timing the cheap stages on realistic shapes
    "small-512": (_tower(512, 2, 8, 1024, **_VISION), _tower(512, 2, 8, 1024, **_TEXT), 512),
    # every shape of openai/clip-vit-base-patch32 (151M parameters)
    "vit-b-32": (_tower(768, 12, 12, **_VISION), _tower(512, 12, 8, **_TEXT), 512),
}

#: OpenAI CLIP's image preprocessing (shortest side 224, bicubic, centre crop 224).
CLIP_IMAGE_PROCESSOR = {
    "do_resize": True, "size": {"shortest_edge": 224}, "resample": 3,
    "do_center_crop": True, "crop_size": {"height": 224, "width": 224},
    "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "do_convert_rgb": True, "image_processor_type": "CLIPImageProcessor",
}


def open_clip_bpe_path() -> Path:
    """Path of ``bpe_simple_vocab_16e6.txt.gz`` inside the installed ``open_clip`` (not imported)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or spec.origin is None:
        raise RuntimeError("open_clip_torch is not installed; `pip install --no-deps open_clip_torch` "
                           "provides the CLIP BPE vocabulary")
    return Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"


def write_clip_tokenizer_files(out_dir: str | Path) -> None:
    """Write vocab.json / merges.txt equal to OpenAI CLIP's (49,408 tokens) from open_clip's BPE table."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = gzip.open(open_clip_bpe_path()).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP reversible byte -> printable unicode table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def build_random_clip(out_dir: str | Path, preset: str = "tiny", seed: int = 0) -> Path:
    """Save a randomly initialised ``CLIPModel`` + tokenizer + image processor to ``out_dir``."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    vision, text, proj = PRESETS[preset]
    out = Path(out_dir)
    write_clip_tokenizer_files(out)
    tokenizer = CLIPTokenizer.from_pretrained(out)
    text = dict(text, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=proj)
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    CLIPImageProcessor(**{k: v for k, v in CLIP_IMAGE_PROCESSOR.items() if k != "image_processor_type"}).save_pretrained(out)
    return out


#: a small English corpus the random SigLIP's SentencePiece vocabulary is trained on (offline, deterministic)
_CORPUS = ("a photo of a dog", "a picture of an elephant", "an art painting of a giraffe", "a cartoon horse",
           "a black and white drawing of a guitar", "a sketch of a house", "an image of a person", "a style of a",
           "a clipart image of the eiffel tower", "a product photo of an alarm clock", "a camera trap photo of a bobcat",
           "a quick doodle of a bird", "a painting of the cat", "an infographic of a car", "a photo of many chairs",
           "a x style of a")


def write_siglip_tokenizer(out_dir: str | Path, max_length: int = 64, vocab_size: int = 64) -> None:
    """A SentencePiece unigram vocabulary trained here on :data:`_CORPUS`, saved as a ``SiglipTokenizer``
    (SigLIP's own tokenizer class: lower-cases, strips punctuation, pads with ``</s>``). The word "x" is one
    piece, as in the released 32k vocabulary, so PromptStyler has a pseudo-word to learn."""
    import io

    import sentencepiece as spm
    from transformers import SiglipTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(list(_CORPUS) * 20), model_writer=model,
                                   vocab_size=vocab_size, model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>", num_threads=1, minloglevel=2,
                                   character_coverage=1.0, hard_vocab_limit=False, user_defined_symbols=["\u2581x"])
    (out / "spiece.model").write_bytes(model.getvalue())
    SiglipTokenizer(str(out / "spiece.model"), model_max_length=max_length).save_pretrained(out)


def build_random_siglip(out_dir: str | Path, preset: str = "tiny", seed: int = 0, max_length: int = 16) -> Path:
    """Save a randomly initialised ``SiglipModel`` + SigLIP tokenizer + image processor (224 x 224, mean / std
    0.5, as the released SigLIPs) to ``out_dir``: the towers of ``preset`` (the text width is the joint space)."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipTokenizer

    vision, text, _ = PRESETS[preset]
    out = Path(out_dir)
    write_siglip_tokenizer(out, max_length)
    tokenizer = SiglipTokenizer.from_pretrained(out)
    width = text["hidden_size"]
    config = SiglipConfig(text_config=dict(text, vocab_size=len(tokenizer), max_position_embeddings=max_length,
                                           pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                                           bos_token_id=tokenizer.eos_token_id),
                          vision_config=dict(vision, hidden_size=width, intermediate_size=text["intermediate_size"]))
    torch.manual_seed(seed)
    SiglipModel(config).eval().save_pretrained(out, safe_serialization=True)
    SiglipImageProcessor(size={"height": 224, "width": 224}, resample=3, image_mean=[0.5] * 3,
                         image_std=[0.5] * 3).save_pretrained(out)
    return out
