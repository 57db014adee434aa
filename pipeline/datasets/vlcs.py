"""VLCS (Fang, Xu, Rockmore, "Unbiased Metric Learning", ICCV 2013): photographs of 5 classes from four
datasets -- Caltech101, LabelMe, SUN09, VOC2007 (DomainBed's folder names and order). Every domain is a
photograph; what differs is the framing the source dataset was collected with, so the descriptions name
it (object-centred close-ups; annotated street / indoor scenes; scene-centric views; consumer snapshots)."""
from . import DATASETS, Dataset


@DATASETS.register("vlcs")
class VLCS(Dataset):
    domains = ["Caltech101", "LabelMe", "SUN09", "VOC2007"]
    descriptions = {"Caltech101": "a centred close-up photo", "LabelMe": "a street scene photo",
                    "SUN09": "a wide scene photo", "VOC2007": "a casual snapshot"}
    reference = "Fang et al., ICCV 2013"
