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
from .store import EMBEDDING, check_same_model, read_feature_stores, read_json, read_metadata, read_table


DESCRIPTION_STORES = (Path("features/descriptions_searched.parquet"), Path("features/descriptions_learned.parquet"))


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


def read_inputs(p: Params, labels: Path, images: Path, prompts: Path, arcface: Path, stage: str = "evaluate",
                descriptions: tuple[Path, ...] = ()) -> EvaluationInputs:
    """``descriptions``: stores of searched / learned descriptions (rows ``domain``, ``kind``), their vectors added to
    ``text`` under their kind; each refused unless the image store's model embedded it."""
    from .prompts import class_text_weights, description_vectors

    img, X, txt, T = read_feature_stores(images, prompts, vector=column_of(p.classifier.features), stage=stage)
    joint = X if p.classifier.features == "projected" else read_table(images, EMBEDDING)[1]
    meta, classes = read_metadata(images), read_json(Path(labels) / "classes.json")["classes"]
    domains = present_domains(img, read_json(Path(labels) / "domains.json")["domains"], stage)
    context = {"class_weights": class_text_weights(txt, T, classes), "classes": classes, "arcface": arcface,
               "image_meta": meta}
    text = description_vectors(txt, T)
    for path in descriptions:
        df, V, dmeta = read_table(path)
        check_same_model(images, meta, path, dmeta)
        for kind, rows in df.groupby("kind", sort=False):
            text[kind] = {d: V[i] for d, i in zip(rows["domain"], rows.index)}
    return EvaluationInputs(img, X, joint, text, domains, classes, meta, context)
