"""TerraIncognita (Beery, Van Horn, Perona, "Recognition in Terra Incognita", ECCV 2018): camera-trap
photographs of 10 classes at four locations -- location_100, location_38, location_43, location_46
(DomainBed's folder names, sorted). A location is a camera's viewpoint and background, nothing a caption
names: every domain gets the same description, so the text operators are the identity here (translation
moves nothing) and only image statistics tell the locations apart (docs/methods.md).

Class folders: DomainBed's downloader names them by species ("bobcat", ...). Copies that keep the
Caltech Camera Traps category ids as folder names ("6", "1", ...) get the species as their prompt name
(ids from the CCT annotation file's ``categories``); any other number needs ``prompts.class_names``."""
from . import DATASETS, Dataset

CCT_CATEGORIES = {"1": "opossum", "3": "raccoon", "5": "squirrel", "6": "bobcat", "8": "dog", "9": "coyote",
                  "10": "rabbit", "11": "bird", "16": "cat", "30": "empty"}


@DATASETS.register("terra_incognita")
class TerraIncognita(Dataset):
    domains = ["location_100", "location_38", "location_43", "location_46"]
    descriptions = {d: "a camera trap photo" for d in domains}
    class_names = {**CCT_CATEGORIES, "30": "empty scene", "empty": "empty scene"}  # no animal: a scene, not a class
    reference = "Beery et al., ECCV 2018"
