"""Dataset presets for the folder layout DomainBed's downloader leaves, ``<root>/<domain>/<class>/<file>``,
one module each, registered in :data:`DATASETS` (params key ``data.dataset``).

The contract (:class:`Dataset`): a preset names its ``domains`` (DomainBed's folder names; ``None`` for
``custom``: the folders found under ``data.root``), default ``descriptions`` per domain (the reasoning is
in docs/methods.md) and ``class_names`` for class folders whose name is not a good prompt. Classes are
never listed by a preset: they are the class folders, sorted as ``sorted()`` orders them (torchvision's
``ImageFolder``, which DomainBed uses), and every domain must hold the same set. ``data.domains``,
``data.classes``, ``prompts.domains`` and ``prompts.class_names`` override the preset.

:func:`resolve` turns params + the folders into a :class:`LabelSpace`: what stage ``prepare`` writes to
``data/domains.json``, ``data/classes.json`` and ``data/templates.json`` for every later stage.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pyarrow.parquet as pq

from ..data import _folder_layout, _hf_class_names, _subfolders, parquet_files
from ..errors import BadInputError, ParamsError
from ..params import Data, Prompts, project_path
from ..registry import Registry

DATASETS: Registry = Registry("dataset", "data.dataset", __name__)
log = logging.getLogger(__name__)
TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates"


class Dataset:
    """A preset: ``domains`` (folder names, in the order tables show them; None = discovered),
    ``descriptions`` {domain: text}, ``class_names`` {class folder: prompt name}, ``reference``."""

    name: ClassVar[str] = ""
    domains: ClassVar[list[str] | None] = None
    descriptions: ClassVar[dict[str, str]] = {}
    class_names: ClassVar[dict[str, str]] = {}
    reference: ClassVar[str] = ""


@dataclass(frozen=True)
class LabelSpace:
    """The resolved dataset: label order, prompt text, templates."""

    dataset: str
    domains: list[str]
    classes: list[str]
    descriptions: dict[str, str]
    class_names: dict[str, str]  # class folder -> the name prompts use
    templates: list[str]
    template_source: str

    # content only (no preset name, no file name): the same label space and text reached another way rerun nothing
    def domains_json(self) -> dict:
        return {"domains": self.domains, "descriptions": self.descriptions}

    def classes_json(self) -> dict:
        return {"classes": self.classes, "names": [self.class_names[c] for c in self.classes]}

    def templates_json(self) -> dict:
        return {"templates": self.templates}


def clean_class_name(folder: str) -> str:
    """A class folder as prompt text: underscores to spaces, runs of spaces collapsed ("The_Eiffel_Tower" ->
    "The Eiffel Tower", "alarm_clock" -> "alarm clock")."""
    return re.sub(r"\s+", " ", folder.replace("_", " ")).strip()


def template_sets() -> list[str]:
    """Names of the shipped template sets (``pipeline/templates/<name>.txt``)."""
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.txt"))


def read_templates(spec: str) -> tuple[list[str], str]:
    """(templates, source) of ``prompts.templates``: a shipped set's name, or a file with one template per line
    (blank lines and lines starting with # ignored); every template holds one ``{}`` for the class name."""
    named = TEMPLATE_DIR / f"{spec}.txt"
    if named.is_file():
        path, source = named, spec
    else:
        path = project_path(spec)
        if not path.is_file():
            raise ParamsError(f"prompts.templates={spec!r}: neither a template set ({', '.join(template_sets())}) "
                              "nor a file")
        source = f"file:{spec}"
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    templates = [ln for ln in lines if ln and not ln.startswith("#")]
    if not templates:
        raise ParamsError(f"prompts.templates={spec!r}: {path} holds no template")
    for n, t in enumerate(templates, 1):
        if t.count("{}") != 1 or re.search(r"\{[^}]", t.replace("{}", "")):
            raise ParamsError(f"prompts.templates={spec!r}: template {n} {t!r} must hold exactly one '{{}}' for the "
                              "class name and no other braces")
    if len(set(templates)) != len(templates):
        dup = next(t for t in templates if templates.count(t) > 1)
        raise ParamsError(f"prompts.templates={spec!r}: template {dup!r} is listed twice")
    return templates, source


def resolve(data: Data, prompts: Prompts, domains: list[str], classes: list[str]) -> LabelSpace:
    """The label space of ``data.dataset`` once its ``domains`` and ``classes`` are known (listed or discovered):
    descriptions (prompts.domains over the preset's) and prompt names (prompts.class_names over the preset's
    over :func:`clean_class_name`). Refuses a domain without a description, naming it."""
    preset = DATASETS[data.dataset]
    descriptions = {}
    for d in domains:
        text = prompts.domains.get(d) or preset.descriptions.get(d)
        if text is None:
            raise ParamsError(f"prompts.domains: no description for domain {d!r} (data.dataset: {data.dataset} has "
                              f"none for it); add prompts.domains.{d}")
        descriptions[d] = text
    unknown = sorted(set(prompts.domains) - set(domains))
    if unknown:
        raise ParamsError(f"prompts.domains: {unknown[0]!r} is not a domain of this dataset ({domains})")
    unknown = sorted(set(prompts.class_names) - set(classes))
    if unknown:
        raise ParamsError(f"prompts.class_names: {unknown[0]!r} is not a class folder of this dataset")
    names = {c: prompts.class_names.get(c) or preset.class_names.get(c) or clean_class_name(c) for c in classes}
    unnamed = [c for c, n in names.items() if n.isdigit()]
    if unnamed:
        log.warning("prepare: class folders %s are numbers and no name is known for them: prompts will say the number "
                    "(zero-shot and PromptStyler learn nothing from it); name them in prompts.class_names",
                    unnamed[:10])
    templates, source = read_templates(prompts.templates)
    return LabelSpace(data.dataset, list(domains), list(classes), descriptions, names, templates, source)


def preset_domains(data: Data) -> list[str] | None:
    """``data.domains`` if listed, else the preset's (None: to be discovered under ``data.root``)."""
    return list(data.domains) if data.domains else (list(DATASETS[data.dataset].domains or []) or None)


def check_same_classes(per_domain: dict[str, list[str]], root) -> list[str]:
    """The class folders shared by every domain, sorted as DomainBed sorts them; one line naming the domain and
    the class that differ otherwise."""
    ref_domain, ref = next(iter(per_domain.items()))
    for d, found in per_domain.items():
        extra, lacking = sorted(set(found) - set(ref)), sorted(set(ref) - set(found))
        if extra or lacking:
            what = (f"{d!r} has class folder {extra[0]!r} that {ref_domain!r} lacks" if extra else
                    f"{d!r} lacks class folder {lacking[0]!r} that {ref_domain!r} has")
            raise BadInputError(f"data.root={root}: the domains hold different classes: {what}; list data.classes "
                                "to choose the label space (missing cells then follow data.on_bad_image)")
    return sorted(ref)


def discover(root: str | Path, data: Data) -> tuple[list[str], list[str]]:
    """(domains, classes) of the dataset at ``root``: ``data.domains`` / ``data.classes`` when listed, else the
    preset's domains (``custom``: the folders under ``root``) and the class folders, which every domain must
    share (sorted as DomainBed sorts them). The Hugging Face parquet layout takes its classes from the
    ClassLabel names stored with it, its domains from the rows."""
    root = Path(root)
    if not root.exists():
        raise BadInputError(f"data.root={root} does not exist")
    domains = preset_domains(data)
    if _folder_layout(root, domains):
        domains = domains or _subfolders(root)
        if data.classes:
            return domains, list(data.classes)
        present = {d: _subfolders(root / d) for d in domains if (root / d).is_dir()}
        return domains, check_same_classes(present, root)
    files = parquet_files(root)
    if not files:
        raise BadInputError(f"data.root={root}: neither <domain>/<class>/<image> folders "
                            f"({'data.domains / the preset: ' + str(domains) if domains else 'no folder'}) "
                            "nor parquet files found")
    if not domains:
        domains = sorted({d for f in files for d in pq.read_table(f, columns=["domain"]).column("domain").to_pylist()})
    classes = list(data.classes) if data.classes else _hf_class_names(files[0])
    if not classes:
        raise BadInputError(f"data.root={root}: the parquet files name no classes (no ClassLabel names); "
                            "list data.classes")
    return domains, classes



def prepare_dataset(root: str | Path, data: Data = Data(), prompts: Prompts = Prompts(),
                    cache: str | Path | None = None) -> tuple:
    """What stage prepare computes: (manifest, locator, report, :class:`LabelSpace`) of the dataset at ``root``."""
    from ..data import build_manifest

    space = resolve(data, prompts, *discover(root, data))
    manifest, locator, report = build_manifest(root, data, cache, space.domains, space.classes)
    return manifest, locator, {"dataset": space.dataset, "templates": space.template_source, **report}, space


__all__ = ["DATASETS", "Dataset", "LabelSpace", "check_same_classes", "clean_class_name", "discover", "prepare_dataset",
           "preset_domains",
           "read_templates", "resolve", "template_sets"]
