"""Dataset presets (issue 21): DomainBed's folder layout, discovered classes, prompt names, template sets."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.datasets import (DATASETS, clean_class_name, discover, prepare_dataset, read_templates, resolve,
                               template_sets)
from pipeline.errors import BadInputError, ParamsError
from pipeline.params import Data, Prompts
from pipeline.prompts import noun_frames, prompt_table
from trees import PRESET_SAMPLES, make_tree


@pytest.mark.parametrize("preset", sorted(PRESET_SAMPLES))
def test_each_preset_names_its_domains_and_discovers_its_classes_sorted(preset, tmp_path):
    domains, classes = PRESET_SAMPLES[preset]
    root = make_tree(tmp_path / preset, domains, list(reversed(classes)), per_class=2)
    found_domains, found_classes = discover(root, Data(dataset=preset))
    assert found_domains == DATASETS[preset].domains and set(found_domains) == set(domains)
    assert found_classes == sorted(classes)  # DomainBed: torchvision ImageFolder sorts the class folders
    manifest, locator, report, space = prepare_dataset(root, Data(dataset=preset))
    assert report["dataset"] == preset and report["images"] == len(domains) * len(classes) * 2
    assert list(manifest["domain"].unique()) == found_domains
    assert (manifest["label"] == manifest["class"].map(found_classes.index)).all()
    assert set(space.descriptions) == set(domains) and all(space.descriptions.values())
    assert not any("_" in n for n in space.class_names.values())


def test_prompt_names_are_cleaned_mapped_and_overridable(tmp_path, caplog):
    assert clean_class_name("The_Eiffel_Tower") == "The Eiffel Tower"
    assert clean_class_name("alarm_clock") == "alarm clock" and clean_class_name("t-shirt") == "t-shirt"
    domains, classes = PRESET_SAMPLES["office_home"]
    space = resolve(Data(dataset="office_home"), Prompts(class_names={"Webcam": "web camera"}), domains, classes)
    assert space.class_names == {"Alarm_Clock": "Alarm Clock", "Postit_Notes": "Post-it Notes", "TV": "TV",
                                 "ToothBrush": "Toothbrush", "Webcam": "web camera"}
    # TerraIncognita: species folders as DomainBed names them; Caltech Camera Traps category ids as species
    terra = resolve(Data(dataset="terra_incognita"), Prompts(), ["location_38"], ["6", "1", "30", "bobcat", "99"])
    assert [terra.class_names[c] for c in ("6", "1", "30", "bobcat")] == ["bobcat", "opossum", "empty scene", "bobcat"]
    assert terra.class_names["99"] == "99" and "['99'] are numbers and no name is known" in caplog.text
    with pytest.raises(ParamsError, match="prompts.class_names: 'zebra' is not a class folder"):
        resolve(Data(), Prompts(class_names={"zebra": "z"}), ["photo"], ["dog"])


def test_explicit_params_override_the_preset(tmp_path):
    root = make_tree(tmp_path / "vlcs", *PRESET_SAMPLES["vlcs"], per_class=2)
    data = Data(dataset="vlcs", domains=["VOC2007", "Caltech101"], classes=["person", "dog"])
    prompts = Prompts(domains={"VOC2007": "a holiday snapshot"})
    _, _, report, space = prepare_dataset(root, data.model_copy(update={"on_bad_image": "skip"}), prompts)
    assert space.domains == ["VOC2007", "Caltech101"] and space.classes == ["person", "dog"]
    assert space.descriptions == {"VOC2007": "a holiday snapshot", "Caltech101": "a centred close-up photo"}
    assert report["skipped"] == 2 + 3 * 2  # the unlisted domains (LabelMe, SUN09) and classes, each one line
    with pytest.raises(ParamsError, match="prompts.domains: 'VOC2012' is not a domain of this dataset"):
        resolve(Data(dataset="vlcs"), Prompts(domains={"VOC2012": "x"}), ["VOC2007"], ["dog"])


def test_classes_that_differ_between_domains_are_named(tmp_path):
    root = make_tree(tmp_path / "dn", ["clipart", "real"], ["zebra", "alarm_clock"], per_class=1)
    make_tree(root, ["real"], ["The_Mona_Lisa"], per_class=1)
    with pytest.raises(BadInputError, match="'real' has class folder 'The_Mona_Lisa' that 'clipart' lacks") as err:
        discover(root, Data(dataset="domain_net", domains=["clipart", "real"]))
    assert "list data.classes" in str(err.value) and "\n" not in str(err.value)
    (root / "real" / "zebra").rename(root / "real" / "zebras")
    with pytest.raises(BadInputError, match="'real' has class folder 'The_Mona_Lisa' that 'clipart' lacks"):
        discover(root, Data(dataset="domain_net", domains=["clipart", "real"]))


def test_custom_discovers_domains_and_needs_their_descriptions(tmp_path):
    root = make_tree(tmp_path / "mine", ["winter", "summer"], ["car", "tree"], per_class=2)
    assert discover(root, Data(dataset="custom")) == (["summer", "winter"], ["car", "tree"])
    with pytest.raises(ParamsError, match="prompts.domains: no description for domain 'summer' "
                                          r"\(data.dataset: custom has none for it\); add prompts.domains.summer"):
        prepare_dataset(root, Data(dataset="custom"))
    _, _, _, space = prepare_dataset(root, Data(dataset="custom"),
                                     Prompts(domains={"summer": "a summer photo", "winter": "a winter photo"}))
    assert space.domains == ["summer", "winter"]
    with pytest.raises(ParamsError, match="data.dataset: unknown dataset 'pacs2' \\(did you mean 'pacs'\\?\\)"):
        discover(root, Data(dataset="pacs2"))


def test_template_sets_named_shipped_and_from_a_file(tmp_path, monkeypatch):
    assert {"simple3", "clip80", "classname"} <= set(template_sets())
    simple, src = read_templates("simple3")
    assert simple == ["a photo of a {}.", "a picture of a {}.", "an image of a {}."] and src == "simple3"
    clip80, _ = read_templates("clip80")
    assert len(clip80) == 80 == len(set(clip80)) and clip80 == _open_clip_imagenet_templates()
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    (tmp_path / "mine.txt").write_text("# mine\nan origami {}.\n\na {} in the snow.\n")
    assert read_templates("mine.txt") == (["an origami {}.", "a {} in the snow."], "file:mine.txt")
    (tmp_path / "bad.txt").write_text("a photo of a {}.\na photo of {} and {}.\n")
    with pytest.raises(ParamsError, match=r"template 2 'a photo of \{\} and \{\}.' must hold exactly one"):
        read_templates("bad.txt")
    with pytest.raises(ParamsError, match="neither a template set .*clip80.* nor a file"):
        read_templates("clip81")
    # the chosen set reaches the class prompts and the class-averaged descriptions' object frames
    table = prompt_table({"photo": "a photo"}, ["goose"], ["alarm_clock"], clip80, {"alarm_clock": "alarm clock"})
    assert (table["kind"] == "class").sum() == 80 and "a bad photo of a alarm clock." in set(table["text"])
    assert (table["kind"] == "domain_noun").sum() == len(noun_frames(clip80)) == 35
    assert "a photo of a goose in a video game" in set(table["text"])


def _open_clip_imagenet_templates() -> list[str]:
    """OpenAI's 80 ImageNet templates as open_clip ships them (``zero_shot_metadata.py``; read as text: importing
    open_clip needs torchvision)."""
    import importlib.util

    source = Path(importlib.util.find_spec("open_clip").submodule_search_locations[0]) / "zero_shot_metadata.py"
    block = re.search(r"OPENAI_IMAGENET_TEMPLATES = \((.*?)\n\)", source.read_text(), re.S).group(1)
    return [t.replace("{c}", "{}") for t in re.findall(r"lambda c: f'(.*?)'", block)]
