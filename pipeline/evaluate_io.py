"""What stage evaluate (and ``clipdg plan``) reads: the feature stores, labels, description vectors and
image-free methods, checked as the stage checks them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .coverage import present_domains
from .featcache import column_of
from .params import Params
from .store import EMBEDDING, read_feature_stores, read_json, read_metadata, read_table


@dataclass
class EvaluationInputs:
    images: pd.DataFrame
    X: np.ndarray  # the features the probes read (classifier.features)
    joint: np.ndarray  # the joint-space features the image-free methods read
    text: dict  # description kind -> {domain: vector}
    domains: list
    classes: list
    meta: dict
    context: dict  # what the image-free methods are built from


def read_inputs(p: Params, labels: Path, images: Path, prompts: Path, arcface: Path, stage: str = "evaluate") -> EvaluationInputs:
    from .prompts import class_text_weights, description_vectors

    img, X, txt, T = read_feature_stores(images, prompts, vector=column_of(p.classifier.features), stage=stage)
    joint = X if p.classifier.features == "projected" else read_table(images, EMBEDDING)[1]
    meta, classes = read_metadata(images), read_json(Path(labels) / "classes.json")["classes"]
    domains = present_domains(img, read_json(Path(labels) / "domains.json")["domains"], stage)
    context = {"class_weights": class_text_weights(txt, T, classes), "classes": classes, "arcface": arcface,
               "image_meta": meta}
    return EvaluationInputs(img, X, joint, description_vectors(txt, T), domains, classes, meta, context)
