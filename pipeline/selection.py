"""Model-selection methods (Gulrajani & Lopez-Paz, "In Search of Lost Domain Generalization", ICLR 2021),
registered in :data:`SELECTIONS`. Each scores one hyper-parameter candidate of one (trial, setting,
method) from its cell and picks the best; ties go to the first candidate in grid order.

* ``train_val`` -- training-domain validation: accuracy on the pooled validation split of the source
  domains (the default, and the headline). It reads no label of the target domain.
* ``lodo_val`` -- leave-one-domain-out validation, for the LODO protocol (>= 2 sources): for each source
  h, the method is trained on the other sources and scored on h's train + validation rows; the score
  is the mean over h. It reads no label of the target domain either.
* ``oracle`` -- accuracy on the *target's* validation split: an upper bound, reported and labelled as
  such, never the headline.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .registry import Registry

SELECTIONS: Registry = Registry("selection method", "evaluation.selection")


class Selection:
    name = ""
    protocols: tuple[str, ...] | None = None  # None: every protocol that trains on images
    score: Callable[[dict], float]


@SELECTIONS.register("train_val")
class TrainingDomainValidation(Selection):
    @staticmethod
    def score(cell: dict) -> float:
        return cell["source_val"]


@SELECTIONS.register("lodo_val")
class LeaveOneDomainOut(Selection):
    protocols = ("lodo",)

    @staticmethod
    def score(cell: dict) -> float:
        held = cell.get("heldout") or []
        return float(np.mean(held)) if held else float("nan")


@SELECTIONS.register("oracle")
class Oracle(Selection):
    @staticmethod
    def score(cell: dict) -> float:
        return cell["target_val"]


def pick(candidates: list[dict], selection: Selection) -> tuple[dict, float]:
    """(the candidate with the best score, that score); NaN scores never win; ties: the first."""
    scores = [selection.score(c) for c in candidates]
    finite = [i for i, s in enumerate(scores) if np.isfinite(s)]
    if not finite:
        return candidates[0], float("nan")
    best = max(finite, key=lambda i: (scores[i], -i))
    return candidates[best], scores[best]
