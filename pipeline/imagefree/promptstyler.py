"""PromptStyler (Cho et al., ICCV 2023): an ArcFace classifier trained on style-content text features
(stage train_arcface), scored on the L2-normalised image features; refused if another model made them."""
from __future__ import annotations

from ..arcface import ArcFace
from ..store import check_same_model
from . import IMAGE_FREE, ImageFree


@IMAGE_FREE.register("promptstyler")
class PromptStylerMethod(ImageFree):
    classifier = "arcface"

    @classmethod
    def build(cls, context: dict):
        styler = ArcFace.load(context["arcface"])
        check_same_model("the image store", context["image_meta"], context["arcface"], styler.provenance_)
        return styler
