"""DomainNet (Peng et al., "Moment Matching for Multi-Source Domain Adaptation", ICCV 2019): 586,575 images,
345 classes, six domains -- clipart, infograph, painting, quickdraw, real, sketch (DomainBed's folder names
and order). Descriptions name each medium as the paper defines it; quickdraw holds the stroke drawings of
the "Quick, Draw!" game, so "a quick doodle" rather than "a drawing", which the sketch domain is."""
from . import DATASETS, Dataset


@DATASETS.register("domain_net")
class DomainNet(Dataset):
    domains = ["clipart", "infograph", "painting", "quickdraw", "real", "sketch"]
    descriptions = {"clipart": "a clipart image", "infograph": "an infographic", "painting": "a painting",
                    "quickdraw": "a quick doodle", "real": "a photo", "sketch": "a sketch"}
    reference = "Peng et al., ICCV 2019"
