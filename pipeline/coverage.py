"""What the data holds of ``data.domains`` x ``data.classes``, said out loud by the stages that need it.

With ``data.on_bad_image: skip``, prepare may leave a domain, or a (domain, class) cell, without
images (``reports/prepare.json`` lists each under ``missing``). The label space never changes
(labels index ``data.classes``); instead each later stage logs what it has to do without, and the
evaluation records the classes a setting lacks in its rows (``missing_classes``).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger("coverage")


def present_domains(images: pd.DataFrame, domains: list[str], stage: str) -> list[str]:
    """``domains`` that have images, in order; each one without is logged as left out by ``stage``."""
    have = set(images["domain"])
    for d in domains:
        if d not in have:
            log.warning("%s: domain %r has no image (see reports/prepare.json); it is left out of this stage", stage, d)
    out = [d for d in domains if d in have]
    if not out:
        raise ValueError(f"{stage}: no image of any of data.domains {domains}")
    return out


def absent_classes(labels: np.ndarray, classes: list[str]) -> list[str]:
    """Classes of the label space with no row among ``labels``."""
    present = set(np.asarray(labels).tolist())
    return [c for i, c in enumerate(classes) if i not in present]


def setting_gaps(train_labels: np.ndarray, test_labels: np.ndarray, classes: list[str]) -> str:
    """'' when a setting's train and test rows cover every class, else e.g. 'train:giraffe;test:dog'
    (the ``missing_classes`` column of reports/accuracy.csv)."""
    parts = [f"{split}:{'+'.join(cs)}" for split, cs in (("train", absent_classes(train_labels, classes)),
                                                         ("test", absent_classes(test_labels, classes))) if cs]
    return ";".join(parts)


def warn_setting(stage: str, protocol: str, sources: list[str], target: str, gaps: str) -> None:
    if gaps:
        log.warning("%s: %s %s -> %s lacks classes (%s): probes trained there never predict a class absent "
                    "from train, and accuracy is over the test classes present", stage, protocol, "+".join(sources),
                    target, gaps)
