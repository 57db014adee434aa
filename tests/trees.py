"""Generated dataset trees in DomainBed's layout, <root>/<domain>/<class>/<file>, with each preset's real domain
folder names and a sample of its real class folder names (the datasets themselves are not available here)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: preset -> (real domain folders, a sample of real class folders) as DomainBed's downloader leaves them
PRESET_SAMPLES = {
    "vlcs": (["Caltech101", "LabelMe", "SUN09", "VOC2007"], ["bird", "car", "chair", "dog", "person"]),
    "office_home": (["Art", "Clipart", "Product", "Real World"], ["Alarm_Clock", "Postit_Notes", "TV", "ToothBrush",
                                                                  "Webcam"]),
    "terra_incognita": (["location_100", "location_38", "location_43", "location_46"],
                        ["bird", "bobcat", "coyote", "empty", "opossum"]),
    "domain_net": (["clipart", "infograph", "painting", "quickdraw", "real", "sketch"],
                   ["The_Eiffel_Tower", "aircraft_carrier", "alarm_clock", "t-shirt", "zebra"]),
}


def make_tree(root: Path, domains, classes, per_class: int = 3, seed: int = 0, size: int = 16) -> Path:
    """Small PNGs of distinct random pixels (so distinct bytes) in every domain x class folder; each domain has
    its own mean colour, so the domains differ in feature space."""
    rng = np.random.default_rng(seed)
    for k, d in enumerate(domains):
        for c in classes:
            (root / d / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = np.clip(rng.normal(40 + 50 * k, 40, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / d / c / f"img{i}.png")
    return root
