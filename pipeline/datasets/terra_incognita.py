"""TerraIncognita (Beery, Van Horn, Perona, "Recognition in Terra Incognita", ECCV 2018): camera-trap
photographs of 10 classes at four locations -- location_100, location_38, location_43, location_46
(DomainBed's folder names, sorted). A location is a camera's viewpoint and background, nothing a caption
names: every domain gets the same description, so the text operators are the identity here (translation
moves nothing) and only image statistics tell the locations apart (docs/methods.md).

Class folders: DomainBed's downloader names them by species ("bobcat", ...). Copies that keep the
Caltech Camera Traps category ids as folder names get the species as their prompt name for the ids that
public code using the CCT annotation file's ``categories`` confirms (1 opossum, 3 raccoon, 6 bobcat,
9 coyote, 16 cat, 30 empty); any other number (squirrel, dog, rabbit, bird) is prompted as the number, with
a warning, until ``prompts.class_names`` names it."""
from . import DATASETS, Dataset

CCT_CATEGORIES = {"1": "opossum", "3": "raccoon", "6": "bobcat", "9": "coyote", "16": "cat", "30": "empty"}


@DATASETS.register("terra_incognita")
class TerraIncognita(Dataset):
    domains = ["location_100", "location_38", "location_43", "location_46"]
    descriptions = {d: "a camera trap photo" for d in domains}
    class_names = {**CCT_CATEGORIES, "30": "empty scene", "empty": "empty scene"}  # no animal: a scene, not a class
    reference = "Beery et al., ECCV 2018"
