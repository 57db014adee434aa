"""SigLIP in ``transformers`` (``SiglipModel``; Zhai et al., "Sigmoid Loss for Language Image Pre-Training",
ICCV 2023). Prefix ``siglip:``; a bare directory whose ``config.json`` says ``model_type: siglip``.

What differs from CLIP, and is honoured here:

* **Text** is tokenised as SigLIP's processor specifies: ``padding="max_length"`` to the tokenizer's
  maximum length (64 for the released models). The model was trained on max-length-padded text and pools
  its last position, so the longest-prompt padding CLIP uses would change every text feature.
* **No projection**: E_I(x) = ``vision_model(x).pooler_output`` (the attention-pooling head's output) and
  E_T(t) = ``text_model(t).pooler_output`` (its head's output) are the joint space already, so the
  ``pooled`` and ``projected`` image features coincide.
* **Sigmoid logits**: a pair's logit is s cos + b, trained as an independent binary decision, not
  calibrated across the candidates of a softmax. The encoder records ``objective: sigmoid`` with s and b;
  nothing downstream treats s cos as softmax logits (see docs/methods.md, CLIP inception score).
"""
from __future__ import annotations

import torch

from .base import ENCODERS
from .hf_clip import HFClipEncoder


@ENCODERS.register("siglip")
class SiglipEncoder(HFClipEncoder):
    model_types = ("siglip",)
    objective = "sigmoid"
    padding = "max_length"

    def _text_dim(self) -> int:
        return int(self.model.config.text_config.hidden_size)

    def image_features(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.model.vision_model(pixel_values=pixels).pooler_output
        return {"projected": pooled, "pooled": pooled}
