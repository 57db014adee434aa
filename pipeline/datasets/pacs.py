"""PACS (Li, Yang, Song, Hospedales, "Deeper, Broader and Artier Domain Generalization", ICCV 2017): 9,991
images, 7 classes. Domains in the order of seed 000's Table 1 (DomainBed sorts them: A, C, P, S); the
descriptions are that table's (Hémadou et al., ORASIS 2023), "sketch" described as the drawings it holds."""
from . import DATASETS, Dataset


@DATASETS.register("pacs")
class PACS(Dataset):
    domains = ["photo", "art_painting", "cartoon", "sketch"]
    descriptions = {"photo": "a photo", "art_painting": "an art painting", "cartoon": "a cartoon",
                    "sketch": "a black and white drawing"}
    reference = "Li et al., ICCV 2017"
