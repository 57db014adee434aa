"""Image-free methods: classifiers trained on no image (CLIP zero-shot, PromptStyler), one module each,
registered in :data:`IMAGE_FREE`. Contract: ``ImageFree.build(context)`` -> a fitted classifier with
``predict(X)`` returning label indices, from ``context`` (a dict: ``class_weights`` -- the ensembled
class text embeddings --, ``classes``, ``arcface`` -- the path of PromptStyler's ArcFace weights --,
``image_meta`` -- the image store's provenance). They are scored on every domain's test split."""
from __future__ import annotations

from ..registry import Registry

IMAGE_FREE: Registry = Registry("image-free method", "evaluation.image_free", __name__)


class ImageFree:
    """Base: ``name`` and ``build(context)``; ``classifier`` names the row's classifier column."""

    name = ""
    classifier = ""

    @classmethod
    def build(cls, context: dict):
        raise NotImplementedError
