"""Embed images once: decode + preprocess in worker threads, overlapped with batched inference."""
from __future__ import annotations

import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence

import numpy as np
from tqdm.auto import tqdm

from .data import decode_image, read_image_bytes
from .encoders import Encoder


def load_pixels(path: str, preprocess: Callable) -> np.ndarray:
    return preprocess(decode_image(read_image_bytes(path)))


def prefetched_batches(paths: Sequence[str], fn: Callable[[str], np.ndarray], batch_size: int,
                       workers: int, depth: int = 2) -> Iterator[np.ndarray]:
    """Yield stacked ``fn(path)`` batches in order, keeping at most ``depth`` batches in flight
    (memory is bounded by batch size, not by dataset size)."""
    with ThreadPoolExecutor(max(1, workers)) as pool:
        pending: deque = deque()
        starts = iter(range(0, len(paths), batch_size))
        for start in starts:
            pending.append([pool.submit(fn, p) for p in paths[start:start + batch_size]])
            if len(pending) > depth:
                yield np.stack([f.result() for f in pending.popleft()])
        while pending:
            yield np.stack([f.result() for f in pending.popleft()])


def embed_images(paths: Sequence[str], encoder: Encoder, batch_size: int = 64, workers: int = 2,
                 progress: bool = True) -> tuple[np.ndarray, dict]:
    """E_I(x) for every path, in order; returns (float32 [n, dim], timing stats)."""
    if batch_size < 1:
        raise ValueError(f"embed.batch_size={batch_size} must be >= 1")
    out = np.empty((len(paths), encoder.dim), np.float32)
    t0, i = time.perf_counter(), 0
    bar = tqdm(total=len(paths), desc="embed images", unit="img", disable=not progress, mininterval=2)
    for batch in prefetched_batches(paths, lambda p: load_pixels(p, encoder.preprocess), batch_size, workers):
        out[i:i + len(batch)] = encoder.encode_images(batch)
        i += len(batch)
        bar.update(len(batch))
    bar.close()
    seconds = time.perf_counter() - t0
    return out, {"images": len(paths), "seconds": round(seconds, 3),
                 "images_per_second": round(len(paths) / seconds, 2) if seconds > 0 else None}
