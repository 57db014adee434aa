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

from pipeline.data import PACS_CLASSES, PACS_DOMAINS
from pipeline.datasets import prepare_dataset
from pipeline.embed import embed_images, export_image_tower, image_runtime, load_pixels
from pipeline.encoders import load_encoder, model_fingerprint
from pipeline.randomclip import build_random_clip
from pipeline.store import write_json, write_table

REPO = Path(__file__).resolve().parents[1]


def pacs_paths(root: Path, n: int) -> list[str]:
    """n images taken round-robin over the 28 domain/class folders (JPEG and PNG alike)."""
    folders = [sorted((root / d / c).iterdir()) for d in PACS_DOMAINS for c in PACS_CLASSES]
    return [str(folders[i % len(folders)][i // len(folders)]) for i in range(n)]


def gemm_gflops(m: int, k: int, n: int, lib=torch, seconds: float = 2.0) -> float:
    """fp32 GEMM rate of ``lib`` (torch: MKL / oneDNN; numpy: its BLAS) on an (m x k) @ (k x n) product."""
    a, b = (lib.randn(m, k), lib.randn(k, n)) if lib is torch else (
        np.random.randn(m, k).astype(np.float32), np.random.randn(k, n).astype(np.float32))
    a @ b
    t0, reps = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9


def matmul_ceiling(tokens: int, width: int) -> tuple[float, str]:
    """The best fp32 GEMM rate measured here over libraries and the tower's GEMM shapes (MLP in / out, square)."""
    shapes = {"mlp-in": (tokens, width, 4 * width), "mlp-out": (tokens, 4 * width, width), "2048^3": (2048,) * 3}
    rates = {f"{lib.__name__} {name}": gemm_gflops(*shape, lib=lib) for lib in (torch, np) for name, shape in shapes.items()}
    best = max(rates, key=rates.get)
    return rates[best], best


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


def option_runs(model_dir: Path, encoder, compile_: bool) -> dict:
    """The runtime options, each a pixels -> features function (model only)."""
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

    def first(run):  # the engine's runtimes return one array per feature kind
        return lambda x: run(x)[0]

    runs = {"eager, no_grad": hf("eager"), "sdpa, no_grad": hf("sdpa"), "sdpa, channels_last": hf("sdpa", True),
            "inference_mode (engine torch)": first(image_runtime(encoder, "torch")[1])}
    if compile_:
        tower = torch.compile(encoder.image_tower())
        runs["torch.compile"] = lambda x: tower(torch.from_numpy(x))[0].detach().numpy()
    t0 = time.perf_counter()
    runs["onnx runtime (engine onnx)"] = first(image_runtime(encoder, "onnx")[1])
    print(f"ONNX export + session: {time.perf_counter() - t0:.1f} s (once per run)")
    runs["onnx int8 dynamic (not used)"] = int8_session(encoder)
    return runs


def int8_session(encoder):
    """ONNX Runtime dynamic int8 quantisation of the engine's exported tower (evaluated, not used:
    its outputs leave the cos 0.9999 tolerance)."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "int8.onnx"
        quantize_dynamic(export_image_tower(encoder, Path(tmp) / "f32.onnx"), dst, weight_type=QuantType.QInt8)
        session = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"pixels": x})[0]


def peak_rss(model_dir: Path, manifest, n: int, batch_size: int, tmp: Path) -> dict:
    """Run the embed_images stage in a fresh process on n images; its peak RSS (MiB) and report."""
    work = tmp / f"rss{n}"
    work.mkdir()
    rows = manifest.sample(n, random_state=0) if n < len(manifest) else manifest
    write_table(work / "data/manifest.parquet", rows.drop(columns="path"))
    write_table(work / "data/paths.parquet", rows[["image_id", "path"]])
    write_json(work / "models/model.json", model_fingerprint(str(model_dir)))  # what stage model writes
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


def main(preset: str = "vit-b-32", images: int = 256, batch_size: int = 32, workers: int = 2, repeats: int = 3,
         compile_: bool = typer.Option(False, "--compile", help="also time torch.compile (~50 s to compile)"),
         rss: str = typer.Option("", help="comma-separated image counts for the peak-RSS runs, e.g. 1000,9991"),
         sweep: str = typer.Option("", help="comma-separated batch sizes: ONNX model-only img/s of each"),
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
        pixels = np.stack([load_pixels(p, encoder.preprocess) for p in paths[:2 * batch_size]])
        engines = {f"engine, runtime {r}": image_runtime(encoder, r)[1] for r in ("torch", "onnx")}
        options = option_runs(model_dir, encoder, compile_)
        for run in engines.values():  # warm-up
            embed_images(paths[:batch_size], encoder, batch_size, workers, progress=False, run=run)
        speed: dict[str, list] = {}
        ceilings, feats, outs, parts = [], {}, {}, []
        for _ in range(repeats):  # interleaved rounds: this machine's speed drifts by tens of percent
            ceilings.append(matmul_ceiling(tokens, width))
            feats["plain HF loop"], t = plain_loop(model_dir, paths, batch_size)
            speed.setdefault("plain HF loop", []).append(images / sum(t.values()))
            parts.append(t)
            for name, run in engines.items():
                feats[name], stats = embed_images(paths, encoder, batch_size, workers, progress=False, run=run)
                speed.setdefault(name, []).append(stats["images_per_second"])
            for name, run in options.items():
                v, outs[name] = model_only(run, pixels, batch_size)
                speed.setdefault(name, []).append(v)
        rate, where = max(ceilings)
        ceiling, med = rate / gflop, {k: float(np.median(v)) for k, v in speed.items()}
        t = {k: float(np.median([p[k] for p in parts])) for k in parts[0]}
        t0 = time.perf_counter()
        [load_pixels(p, encoder.preprocess) for p in paths]
        print(f"{preset}: {gflop:.2f} GFLOP/image; best fp32 GEMM {rate:.0f} GFLOP/s ({where}) on {threads} "
              f"threads -> ceiling {ceiling:.1f} img/s")
        print(f"plain loop seconds: decode {t['decode']:.1f}, HF preprocess {t['preprocess']:.1f}, model "
              f"{t['model']:.1f}; engine decode + preprocess alone: "
              f"{images / (time.perf_counter() - t0):.0f} img/s on one thread")
        head = f"{'img/s: median (min-max) of ' + str(repeats):<34} {'img/s':>16} {'x ceiling':>10} {'x plain':>8} {'min cos':>8}"
        ref_out = outs["eager, no_grad"]
        for title, names, ref, base in (
                (f"end to end, {images} PACS images", ["plain HF loop", *engines], feats["plain HF loop"], "plain HF loop"),
                (f"model only, {len(pixels)} images, batch {batch_size} (x plain: vs eager)", list(options), ref_out,
                 "eager, no_grad")):
            print(f"\n{title}\n{head}")
            for name in names:
                v, got = speed[name], feats.get(name, outs.get(name))
                print(f"{name:<34} {med[name]:>6.2f} ({min(v):.1f}-{max(v):.1f}) {med[name] / ceiling:>10.2f} "
                      f"{med[name] / med[base]:>8.2f} {cos_min(got, ref):>8.5f}")
    if sweep:
        run = image_runtime(encoder, "onnx")[1]
        run = (lambda r: lambda x: r(x)[0])(run)
        pixels = np.stack([load_pixels(p, encoder.preprocess) for p in pacs_paths(pacs, 128)])
        print("\nONNX Runtime, model only, by batch size (median of 3 rounds, img/s):")
        sizes = [int(v) for v in sweep.split(",")]
        rounds = [[model_only(run, pixels, b, reps=1)[0] for b in sizes] for _ in range(3)]
        print("  " + ", ".join(f"{b}: {np.median(col):.2f}" for b, col in zip(sizes, zip(*rounds))))
    if rss:
        manifest, locator = prepare_dataset(pacs)[:2]
        manifest = manifest.assign(path=locator["path"].to_numpy())
        print(f"\npeak RSS of the embed_images stage ({preset}, batch {batch_size}, fresh cache):")
        for n in (int(v) for v in rss.split(",")):
            r = peak_rss(model_dir, manifest, n, batch_size, tmp)
            print(f"  {n:>6} images: peak RSS {r['peak_rss_mb']} MiB, {r['embedded']} embedded at "
                  f"{r['images_per_second']} img/s ({r['runtime']})")


if __name__ == "__main__":
    typer.run(main)
