"""Embedding engine vs the plain transformers loop vs the matmul ceiling, on the same real PACS images.

    python benchmarks/embed_engine.py --preset vit-b-32 --images 256            # throughput + options
    python benchmarks/embed_engine.py --preset tiny --images 0 --rss 1000,9991  # peak RSS of the stage

Random weights cost the FLOPs of trained ones, so ``vit-b-32`` times openai/clip-vit-base-patch32.
Ceiling = the best fp32 GEMM rate measured here (square and model-shaped) / the image tower's FLOPs
per image (torch's FlopCounterMode). Plain loop = what a user writes: PIL open, the model's HF
image processor, ``get_image_features`` under ``no_grad``, one batch after the other.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import typer
import yaml
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from pipeline.data import PACS_CLASSES, PACS_DOMAINS, build_manifest
from pipeline.embed import embed_images, image_runtime, load_pixels
from pipeline.encoders import load_encoder
from pipeline.randomclip import build_random_clip
from pipeline.store import write_table

REPO = Path(__file__).resolve().parents[1]


def pacs_paths(root: Path, n: int) -> list[str]:
    """n images taken round-robin over the 28 domain/class folders (JPEG and PNG alike)."""
    folders = [sorted((root / d / c).iterdir()) for d in PACS_DOMAINS for c in PACS_CLASSES]
    return [str(folders[i % len(folders)][i // len(folders)]) for i in range(n)]


def gemm_gflops(m: int, k: int, n: int, seconds: float = 3.0) -> float:
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    t0, reps = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9


def tower_gflop(encoder) -> float:
    h, w = encoder.preprocess.output_hw()
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        encoder.image_tower()(torch.zeros(1, 3, h, w))
    return counter.get_total_flops() / 1e9


def plain_loop(model_dir: Path, paths: list[str], batch_size: int) -> tuple[np.ndarray, dict]:
    from transformers import AutoImageProcessor, AutoModel

    model, proc = AutoModel.from_pretrained(model_dir).eval(), AutoImageProcessor.from_pretrained(model_dir)
    out, t = [], {"decode": 0.0, "preprocess": 0.0, "model": 0.0}
    for i in range(0, len(paths), batch_size):
        t0 = time.perf_counter()
        images = [Image.open(p).convert("RGB") for p in paths[i:i + batch_size]]
        t1 = time.perf_counter()
        pixels = proc(images=images, return_tensors="pt")["pixel_values"]
        t2 = time.perf_counter()
        with torch.no_grad():
            f = model.get_image_features(pixel_values=pixels)
        out.append(getattr(f, "pooler_output", f).numpy())
        t["model"] += time.perf_counter() - t2
        t["decode"], t["preprocess"] = t["decode"] + t1 - t0, t["preprocess"] + t2 - t1
    return np.concatenate(out), t


def model_only(fn, pixels: np.ndarray, batch_size: int, reps: int = 2) -> tuple[float, np.ndarray]:
    fn(pixels[:batch_size])
    t0 = time.perf_counter()
    for _ in range(reps):
        out = np.concatenate([np.asarray(fn(pixels[i:i + batch_size])) for i in range(0, len(pixels), batch_size)])
    return reps * len(pixels) / (time.perf_counter() - t0), out


def cos_min(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def options(model_dir: Path, encoder, pixels: np.ndarray, batch_size: int, compile_: bool) -> list[tuple]:
    """Model-only img/s of each runtime option on the same pixels, and min cos to the eager output."""
    from transformers import AutoModel

    def hf(attn: str, channels_last: bool = False):
        m = AutoModel.from_pretrained(model_dir, attn_implementation=attn).eval()
        if channels_last:
            m = m.to(memory_format=torch.channels_last)

        def run(x):
            x = torch.from_numpy(x)
            x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
            with torch.no_grad():
                f = m.get_image_features(pixel_values=x)
            return getattr(f, "pooler_output", f).numpy()
        return run

    runs = {"eager, no_grad": hf("eager"), "sdpa, no_grad": hf("sdpa"), "sdpa, channels_last": hf("sdpa", True),
            "inference_mode (engine torch)": image_runtime(encoder, "torch")[1]}
    if compile_:
        tower = torch.compile(encoder.image_tower())
        runs["torch.compile"] = lambda x: tower(torch.from_numpy(x)).detach().numpy()
    t0 = time.perf_counter()
    runs["onnx runtime (engine onnx)"] = image_runtime(encoder, "onnx")[1]
    print(f"  (ONNX export + session: {time.perf_counter() - t0:.1f} s, once per run)")
    rows, ref = [], None
    for name, fn in runs.items():
        speed, out = model_only(fn, pixels, batch_size)
        ref = out if ref is None else ref
        rows.append((name, speed, cos_min(out, ref)))
    return rows


def peak_rss(model_dir: Path, manifest, n: int, batch_size: int, tmp: Path) -> dict:
    """Run the embed_images stage in a fresh process on n images; its peak RSS (MiB) and report."""
    work = tmp / f"rss{n}"
    work.mkdir()
    write_table(work / "data/manifest.parquet", manifest.sample(n, random_state=0) if n < len(manifest) else manifest)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"]["name"] = str(model_dir)
    params["embed"].update(batch_size=batch_size, device="cpu", cache_dir=str(work / "cache"))
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    code = ("import resource, runpy, sys\nsys.argv = ['embed_images.py']\ntry:\n"
            f"    runpy.run_path({str(REPO / 'stages' / 'embed_images.py')!r}, run_name='__main__')\nfinally:\n"
            "    print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n")
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'stages'}{os.pathsep}{REPO}", HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr[-3000:])
    rss = float(r.stdout.split("RSS")[-1])
    return {**json.loads((work / "reports/embed.json").read_text()), "images": n, "peak_rss_mb": round(rss)}


def main(preset: str = "vit-b-32", images: int = 256, batch_size: int = 32, workers: int = 2,
         compile_: bool = typer.Option(False, "--compile", help="also time torch.compile (~50 s to compile)"),
         rss: str = typer.Option("", help="comma-separated image counts for the peak-RSS runs, e.g. 1000,9991"),
         pacs: Path = Path(os.environ.get("PACS_ROOT", REPO.parent / "shared" / "pacs"))) -> None:
    tmp = Path(tempfile.mkdtemp())
    model_dir = build_random_clip(tmp / preset, preset)
    encoder = load_encoder(str(model_dir), "cpu")
    threads = torch.get_num_threads()
    if images:
        paths = pacs_paths(pacs, images)
        gflop = tower_gflop(encoder)
        vision = encoder.model.config.vision_config
        width, tokens = vision.hidden_size, ((vision.image_size // vision.patch_size) ** 2 + 1) * batch_size
        rate = max(gemm_gflops(2048, 2048, 2048), gemm_gflops(tokens, width, 4 * width))
        ceiling = rate / gflop
        print(f"{preset}: {gflop:.2f} GFLOP/image; best fp32 GEMM {rate:.0f} GFLOP/s on {threads} threads "
              f"-> ceiling {ceiling:.1f} img/s")

        plain, t = plain_loop(model_dir, paths, batch_size)
        plain_speed = images / sum(t.values())
        print(f"plain HF loop: {plain_speed:.2f} img/s  (decode {t['decode']:.1f} s, HF preprocess "
              f"{t['preprocess']:.1f} s, model {t['model']:.1f} s)")
        t0 = time.perf_counter()
        [load_pixels(p, encoder.preprocess) for p in paths]
        print(f"engine decode + preprocess alone: {images / (time.perf_counter() - t0):.0f} img/s on one thread")
        results = {}
        for runtime in ("torch", "onnx"):
            name, run = image_runtime(encoder, runtime)
            embed_images(paths[:batch_size], encoder, batch_size, workers, progress=False, run=run)  # warm-up
            results[runtime] = embed_images(paths, encoder, batch_size, workers, progress=False, run=run)
        print(f"\n{'end to end, ' + str(images) + ' images':<34} {'img/s':>7} {'x ceiling':>10} {'x plain':>8} {'min cos':>8}")
        print(f"{'plain HF loop':<34} {plain_speed:>7.2f} {plain_speed / ceiling:>10.2f} {1:>8.2f} {1:>8.5f}")
        for runtime, (feats, stats) in results.items():
            s = stats["images_per_second"]
            print(f"{'engine, runtime ' + runtime:<34} {s:>7.2f} {s / ceiling:>10.2f} {s / plain_speed:>8.2f} "
                  f"{cos_min(feats, plain):>8.5f}")

        pixels = np.stack([load_pixels(p, encoder.preprocess) for p in paths[:2 * batch_size]])
        print(f"\nmodel only, {len(pixels)} images, batch {batch_size}: runtime options")
        for name, speed, cos in options(model_dir, encoder, pixels, batch_size, compile_):
            print(f"{name:<34} {speed:>7.2f} {speed / ceiling:>10.2f} {'':>8} {cos:>8.5f}")
    if rss:
        manifest = build_manifest(pacs)[0]
        print(f"\npeak RSS of the embed_images stage ({preset}, batch {batch_size}, fresh cache):")
        for n in (int(v) for v in rss.split(",")):
            r = peak_rss(model_dir, manifest, n, batch_size, tmp)
            print(f"  {n:>6} images: peak RSS {r['peak_rss_mb']} MiB, {r['embedded']} embedded at "
                  f"{r['images_per_second']} img/s ({r['runtime']})")


if __name__ == "__main__":
    typer.run(main)
