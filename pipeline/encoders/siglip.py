"""SigLIP in ``transformers`` (``SiglipModel``; Zhai et al., "Sigmoid Loss for Language Image Pre-Training",
ICCV 2023). Prefix ``siglip:``; a bare directory whose ``config.json`` says ``model_type: siglip``.

What differs from CLIP, and is honoured here:

* **Text** is tokenised as SigLIP's processor specifies: ``padding="max_length"`` to the tokenizer's
  maximum length (64 for the released models). The model was trained on max-length-padded text and pools
  its last position, so the longest-prompt padding CLIP uses would change every text feature.
* **No projection**: E_I(x) = ``vision_model(x).pooler_output`` (the attention-pooling head's output) and
  E_T(t) = ``text_model(t).pooler_output`` (its head's output) are the joint space already, so the
  ``pooled`` and ``projected`` image features coincide.
* **Layers**: ``layer_<i>`` is block ``i``'s output through the final LayerNorm and the attention-pooling
  head, as the tower pools its last block.
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

    def pool_block(self, hidden: torch.Tensor) -> torch.Tensor:
        """A block's output pooled as the tower pools its last one: the final LayerNorm, then the attention-pooling head."""
        vision = self.model.vision_model
        return vision.head(vision.post_layernorm(hidden))

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled  # the head's output is the joint space already
