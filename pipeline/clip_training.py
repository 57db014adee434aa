"""Training a MiniCLIP on PACS image-caption pairs (seed 001) and scoring image -> text retrieval.

Captions (``clip.captions``) come from the domain descriptions and the class ("an art painting of a dog"),
or from the class alone ("a dog"); many images share one caption: the contrastive
targets are multi-positive (:func:`pipeline.contrastive.info_nce` with caption labels). Images are
decoded, resized and centre-cropped once into a uint8 array; each epoch only flips and normalises.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from tqdm import tqdm

from .contrastive import info_nce, retrieval_topk, triplet_max_violation
from .images import decode_image, read_image_bytes
from .miniclip import CLIP_MEAN, CLIP_STD, MiniCLIP, tokenize
from .params import Clip
from .preprocess import Preprocess
from .prompts import with_article


def caption_set(descriptions: dict[str, str], classes: list[str], names: dict[str, str] | None = None,
                mode: str = "domain_and_class") -> tuple[list[str], dict[tuple[str, str], int]]:
    """Captions and their index per (domain, class folder); ``names``: class folder -> prompt name (default:
    the folder). ``domain_and_class``: "<domain description> of <a|an> <class name>" (seed 001's), one per
    domain x class; ``class_only``: "<a|an> <class name>", one per class, shared by every domain (the model
    never reads a domain word)."""
    texts, index, names = [], {}, names or {}
    if mode == "class_only":
        for c in classes:
            texts.append(with_article(names.get(c, c)))
            for d in descriptions:
                index[d, c] = len(texts) - 1
        return texts, index
    if mode != "domain_and_class":
        raise ValueError(f"clip.captions={mode!r}: choose domain_and_class or class_only")
    for d, desc in descriptions.items():
        for c in classes:
            index[d, c] = len(texts)
            texts.append(f"{desc} of {with_article(names.get(c, c))}")
    return texts, index


def training_rows(manifest, train_domains: list[str] | None) -> np.ndarray:
    """The rows MiniCLIP trains on: the train split of ``clip.train_domains`` (None: every domain)."""
    from .errors import ParamsError

    rows = (manifest["split"] == "train").to_numpy()
    if train_domains is None:
        return rows
    present = list(dict.fromkeys(manifest["domain"]))
    missing = [d for d in train_domains if d not in present]
    if missing:
        raise ParamsError(f"clip.train_domains: {missing[0]!r} is not a domain of this dataset ({', '.join(present)}); "
                          "list some of them, or null for every domain")
    return rows & manifest["domain"].isin(train_domains).to_numpy()


def decode_uint8(paths: list[str], image_size: int, workers: int = 2) -> np.ndarray:
    """(n, 3, S, S) uint8: shortest side resized to S (bicubic), centre crop S x S."""
    prep = Preprocess(shortest_edge=image_size, resize_hw=None, crop_hw=(image_size, image_size), resample=3,
                      rescale_factor=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))

    def one(path):
        return np.clip(np.rint(prep(decode_image(read_image_bytes(path)))), 0, 255).astype(np.uint8)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        out = list(tqdm(pool.map(one, paths), total=len(paths), desc="decode", unit="img", leave=False))
    return np.stack(out) if out else np.zeros((0, 3, image_size, image_size), np.uint8)


_MEAN, _STD = torch.tensor(CLIP_MEAN)[:, None, None], torch.tensor(CLIP_STD)[:, None, None]


def to_pixels(batch: np.ndarray, flip: np.ndarray | None = None) -> torch.Tensor:
    """uint8 (n, 3, S, S) -> CLIP-normalised float32, rows in ``flip`` mirrored horizontally."""
    x = torch.from_numpy(batch).float().div_(255)
    if flip is not None and flip.any():
        x[flip] = x[flip].flip(-1)
    return (x - _MEAN) / _STD


def train(model: MiniCLIP, tokenizer, images: np.ndarray, caption_idx: np.ndarray, captions: list[str],
          epochs: int = 5, batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.1,
          text_lr_scale: float = 0.1, triplet_weight: float = 0.0, triplet_margin: float = 0.2,
          seed: int = 0, device: str = "cpu") -> list[dict]:
    """AdamW with linear warm-up (first 10% of steps) and cosine decay; loss = InfoNCE (+
    ``triplet_weight`` x VSE++ triplet). The pretrained text tower learns at ``text_lr_scale`` x lr.
    Returns one record per step (epoch, step, loss, temperature)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.to(device).train()
    ids, mask = tokenize(tokenizer, captions, model.spec["max_length"])
    ids, mask = ids.to(device), mask.to(device)
    text_params = list(model.text.parameters())
    text_ids = {id(p) for p in text_params}
    other = [p for p in model.parameters() if id(p) not in text_ids]
    opt = torch.optim.AdamW([{"params": other, "lr": lr}, {"params": text_params, "lr": lr * text_lr_scale}],
                            weight_decay=weight_decay)
    n = len(images)
    steps_per_epoch = max(1, n // batch_size)
    total = epochs * steps_per_epoch
    base = [group["lr"] for group in opt.param_groups]
    warm = max(1, total // 10)
    log, step = [], 0
    bar = tqdm(total=total, desc="train_clip", unit="step")
    for epoch in range(epochs):
        order = torch.randperm(n, generator=g).numpy()
        for s in range(steps_per_epoch):
            b = order[s * batch_size:(s + 1) * batch_size]
            f = (step + 1) / warm if step < warm else 0.5 * (1 + np.cos(np.pi * (step - warm) / max(1, total - warm)))
            for group, lr0 in zip(opt.param_groups, base):
                group["lr"] = lr0 * f
            flip = torch.rand(len(b), generator=g).numpy() < 0.5
            labels = torch.as_tensor(caption_idx[b], device=device)
            uniq, inv = labels.unique(return_inverse=True)
            img = model.encode_image(to_pixels(images[b], flip).to(device))
            txt = model.encode_text(ids[uniq], mask[uniq])[inv]  # each distinct caption encoded once
            loss = info_nce(img, txt, model.logit_scale(), labels)
            if triplet_weight:
                loss = loss + triplet_weight * triplet_max_violation(img, txt, triplet_margin, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                log.append({"epoch": epoch, "step": step, "loss": loss.item(), "temperature": 1 / model.logit_scale().item()})
            bar.update()
            bar.set_postfix(loss=f"{log[-1]['loss']:.3f}")
            step += 1
    bar.close()
    return log


@torch.inference_mode()
def retrieval(model: MiniCLIP, tokenizer, images: np.ndarray, caption_idx: np.ndarray, captions: list[str],
              ks=(1, 5), batch_size: int = 256, device: str = "cpu") -> dict[int, float]:
    """Image -> text top-k accuracy over the whole caption set (seed 001's metric)."""
    model.to(device).eval()
    ids, mask = tokenize(tokenizer, captions, model.spec["max_length"])
    T = model.encode_text(ids.to(device), mask.to(device)).cpu().numpy()
    I = np.concatenate([model.encode_image(to_pixels(images[i:i + batch_size]).to(device)).cpu().numpy()
                        for i in range(0, len(images), batch_size)])
    return retrieval_topk(I, T, np.asarray(caption_idx), ks)


def pairing_spec(image_arch: str, text_arch: str, cfg: Clip) -> dict:
    """The MiniCLIP architecture for one image x text pairing, from the ``clip`` params."""
    from .miniclip import build_spec

    section = lambda arch: getattr(cfg, arch).model_dump() if hasattr(cfg, arch) else None  # noqa: E731
    return build_spec(image_arch, text_arch, embed_dim=cfg.embed_dim, image_size=cfg.image_size,
                      image=section(image_arch), text=section(text_arch), max_length=cfg.max_length)


def train_pairings(manifest, descriptions: dict[str, str], classes: list[str], cfg: Clip, workers: int = 2,
                   names: dict[str, str] | None = None):
    """Train every ``cfg.pairings`` on the train split of ``cfg.train_domains`` with ``cfg.captions`` and score
    retrieval on both splits of every domain; ``manifest`` has a ``path`` column (where to read each image).

    Returns (models {pairing name: (model, tokenizer)}, retrieval rows, loss rows). Images are decoded
    once for all pairings."""
    from .miniclip import load_tokenizer

    captions, index = caption_set(descriptions, classes, names, cfg.captions)
    cap = np.array([index[d, c] for d, c in zip(manifest["domain"], manifest["class"])])
    tr = training_rows(manifest, cfg.train_domains)
    images = decode_uint8(manifest["path"].tolist(), cfg.image_size, workers)
    split = manifest["split"].to_numpy()
    models, scores, losses = {}, [], []
    for image_arch, text_arch in cfg.pairings:
        name = f"{image_arch}+{text_arch}"
        torch.manual_seed(cfg.seed)
        spec = pairing_spec(image_arch, text_arch, cfg)
        model, tok = MiniCLIP(spec), load_tokenizer(spec)
        log = train(model, tok, images[tr], cap[tr], captions, epochs=cfg.epochs, batch_size=cfg.batch_size,
                    lr=cfg.lr, weight_decay=cfg.weight_decay, text_lr_scale=cfg.text_lr_scale,
                    triplet_weight=cfg.triplet_weight, triplet_margin=cfg.triplet_margin, seed=cfg.seed)
        losses += [{"pairing": name, **r} for r in log]
        for s in ("train", "test"):
            m = split == s
            topk = retrieval(model, tok, images[m], cap[m], captions, ks=tuple(cfg.ks))
            scores.append({"pairing": name, "split": s, "n_images": int(m.sum()), "n_captions": len(captions),
                           **{f"top{k}": round(v, 4) for k, v in topk.items()}})
        models[name] = (model, tok)
    return models, scores, losses


def trains_miniclip(model_name: str) -> bool:
    """Whether ``model.name`` is the MiniCLIP stage train_clip writes (``models/miniclip``, bare or with the
    ``miniclip:`` prefix): only then does the stage train."""
    from pathlib import Path

    from .params import MINICLIP_DIR, split_model_name

    family, path = split_model_name(model_name)
    return family in (None, "miniclip") and Path(path) == Path(MINICLIP_DIR)
