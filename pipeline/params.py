"""One typed schema for ``params.yaml`` (pydantic v2), loaded once by every stage through :func:`load_params`.

Every section is a model with ``extra="forbid"`` and strict types: an unknown key at any depth is
refused naming the key and the closest valid one, a value of the wrong type or out of range is
refused naming the key, the value and the rule -- one line, no traceback (:class:`ParamsError`).
The defaults below are the documented ones; ``params.yaml`` spells every one of them out (a test
keeps the two equal). Stages hand the typed sections to ``pipeline`` functions.

Names that a registry resolves (probes, operators, gap metrics) are checked by that registry when
the stage that uses them runs, so that adding one is one file plus its params key.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ParamsError, did_you_mean

PositiveInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]
HalfOpenFraction = Annotated[float, Field(ge=0, lt=1)]
UnitInterval = Annotated[float, Field(ge=0, le=1)]
Momentum = Annotated[float, Field(ge=0, lt=1)]
Names = Annotated[list[str], Field(min_length=1)]

MINICLIP_DIR = "models/miniclip"  # what stage train_clip (models/dvc.yaml) writes


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _unique(values: list, key: str) -> list:
    dup = sorted({v for v in values if values.count(v) > 1}, key=str)
    if dup:
        raise ValueError(f"lists {dup} more than once")
    return values


# ------------------------------------------------------------------------------------- sections
class Data(Section):
    root: str = "../shared/pacs"  # relative paths resolve against the project (DVC_ROOT), see project_path
    dataset: str = "pacs"  # a preset of pipeline/datasets/ (checked by its registry where it is resolved)
    domains: Names | None = None  # None: the preset's (custom: the folders under root)
    classes: Names | None = None  # None: discovered from the class folders (sorted, as DomainBed does)
    test_fraction: Fraction = 0.2
    val_fraction: HalfOpenFraction = 0.2  # of each domain's train split, held out for model selection
    split_seed: NonNegInt = 0
    on_bad_image: Literal["fail", "skip"] = "fail"
    on_duplicate: Literal["keep", "fail", "one"] = "keep"
    workers: PositiveInt = 4
    cache_dir: str = "cache/prepare"

    @field_validator("domains", "classes")
    @classmethod
    def _no_duplicates(cls, v, info):
        return v if v is None else _unique(v, info.field_name)


class Model(Section):
    name: str = MINICLIP_DIR  # a model directory, optionally prefixed by its family (pipeline/encoders/)
    cache_dir: str = "cache/models"  # model fingerprints by file stats (stage model), kept across runs


class ResNet(Section):
    width: PositiveInt = 32
    blocks: PositiveInt = 1


class _Attention(Section):
    """A transformer tower's shape: its width must split evenly over its heads."""

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not a multiple of heads {self.heads}")
        return self


class ViT(_Attention):
    patch: PositiveInt = 8
    width: PositiveInt = 128
    depth: PositiveInt = 4
    heads: PositiveInt = 4


class GPT2(_Attention):
    width: PositiveInt = 256
    depth: PositiveInt = 4
    heads: PositiveInt = 4


Pairing = Annotated[list[str], Field(min_length=2, max_length=2)]


class Clip(Section):
    pairings: Annotated[list[Pairing], Field(min_length=1)] = [["resnet", "minilm"], ["vit", "minilm"], ["vit", "gpt2"]]
    use: Pairing = ["resnet", "minilm"]
    embed_dim: PositiveInt = 128
    image_size: Annotated[int, Field(ge=8)] = 64
    max_length: Annotated[int, Field(ge=4)] = 32
    resnet: ResNet = ResNet()
    vit: ViT = ViT()
    gpt2: GPT2 = GPT2()
    epochs: PositiveInt = 3
    batch_size: Annotated[int, Field(ge=2)] = 128
    lr: Positive = 0.001
    text_lr_scale: NonNeg = 0.1
    weight_decay: NonNeg = 0.1
    triplet_weight: NonNeg = 0.0
    triplet_margin: NonNeg = 0.2
    ks: Annotated[list[PositiveInt], Field(min_length=1)] = [1, 5]
    seed: NonNegInt = 0
    train_domains: Annotated[list[str], Field(min_length=1)] | None = ["photo"]
    captions: Literal["domain_and_class", "class_only"] = "class_only"

    @field_validator("train_domains")
    @classmethod
    def _unique_domains(cls, v, info):
        return v if v is None else _unique(v, info.field_name)

    @model_validator(mode="after")
    def _consistent(self):
        for image, text in self.pairings:
            if image not in ("resnet", "vit") or text not in ("minilm", "gpt2"):
                raise ValueError(f"pairing [{image}, {text}]: image tower resnet | vit, text tower minilm | gpt2")
        if list(self.use) not in [list(p) for p in self.pairings]:
            raise ValueError(f"use {list(self.use)} is not one of pairings {self.pairings}")
        if any(img == "vit" for img, _ in self.pairings) and self.image_size % self.vit.patch:
            raise ValueError(f"image_size {self.image_size} is not a multiple of vit.patch {self.vit.patch}")
        return self


def _device(*extra: str):
    """A device knob's type: auto, cpu, cuda, cuda:N (and ``extra``), refused otherwise naming the choices."""
    pattern = "|".join(["auto", "cpu", r"cuda(:\d+)?", *extra])

    def check(v: str) -> str:
        if not re.fullmatch(pattern, v):
            raise ValueError(f"must be {', '.join(['auto', 'cpu', 'cuda', 'cuda:N', *extra])}")
        return v

    return Annotated[str, AfterValidator(check)]


EmbedDevice, ProbeDevice = _device("mps"), _device()


class Ray(Section):
    address: str | None = None
    actors: PositiveInt = 2
    cpus_per_actor: Positive = 1
    gpus_per_actor: NonNeg = 0


class Embed(Section):
    batch_size: PositiveInt = 32
    device: EmbedDevice = "auto"
    workers: PositiveInt = 2
    runtime: Literal["auto", "torch", "onnx"] = "auto"
    threads: NonNegInt = 0
    shard_size: PositiveInt = 1024
    cache_dir: str = "cache/embeddings"
    engine: Literal["local", "ray"] = "local"
    ray: Ray = Ray()
    features: Literal["projected", "pooled", "both"] = "projected"
    layers: Literal["all"] | list[NonNegInt] | None = "all"  # blocks of the image tower stored (features/layers.parquet)
    layer_dtype: Literal["float32", "float16"] = "float32"

    @model_validator(mode="after")
    def _shard_multiple_of_batch(self):
        if self.shard_size % self.batch_size:
            raise ValueError(f"shard_size {self.shard_size} must be a multiple of batch_size {self.batch_size}")
        return self


class Prompts(Section):
    domains: dict[str, str] = {}  # description per domain, over the preset's defaults
    class_names: dict[str, str] = {}  # class folder -> the name prompts use, over the preset's and the cleaning
    templates: str = "simple3"  # a named set (pipeline/templates/) or a file of templates, one per line, each with {}
    dummy_nouns: Names = ["goose", "goldfish", "car", "chair", "tree", "bicycle", "cup", "lamp", "boat", "clock",
                          "apple", "bridge", "shoe", "bottle", "airplane", "umbrella"]

    @field_validator("domains", "class_names")
    @classmethod
    def _non_empty(cls, v, info):
        blank = [k for k, text in v.items() if not text.strip()]
        if blank:
            raise ValueError(f"{blank[0]!r} maps to an empty text")
        return v


def _grid(values):
    """A scalar, or a non-empty list without duplicates (a hyper-parameter grid)."""
    if isinstance(values, list):
        if not values:
            raise ValueError("a grid needs at least one value")
        _unique(values, "")
    return values


PositiveGrid = Annotated[Positive | Annotated[list[Positive], Field(min_length=1)], AfterValidator(_grid)]
NonNegGrid = Annotated[NonNeg | Annotated[list[NonNeg], Field(min_length=1)], AfterValidator(_grid)]
FloatGrid = Annotated[float | Annotated[list[float], Field(min_length=1)], AfterValidator(_grid)]


def as_list(values) -> list:
    return list(values) if isinstance(values, list) else [values]


class Dann(Section):
    hidden: PositiveInt = 128
    steps: PositiveInt = 300
    batch_size: PositiveInt = 64
    lr: PositiveGrid = 0.01
    domain_weight: NonNegGrid = [0.1, 1.0]

    def grids(self) -> dict:
        return {"lr": self.lr, "domain_weight": self.domain_weight}

    def fixed(self) -> dict:
        return {"hidden": self.hidden, "steps": self.steps, "batch_size": self.batch_size}


class Classifier(Section):
    probes: Names = ["logreg", "svm", "dann"]  # + softmax (logreg's objective to 1e-5, no C path), logreg_sklearn (the reference), ridge (closed form)
    C: PositiveGrid = [0.01, 0.1, 1.0]
    max_iter: PositiveInt = 1000
    standardize: bool = True
    seed: NonNegInt = 0
    n_jobs: int = 2
    features: Literal["projected", "pooled"] = "projected"  # the image features the probes read
    device: ProbeDevice = "auto"  # the torch probes (logreg, softmax, svm) and DANN: auto (cuda when visible) | cpu | cuda[:N]
    dann: Dann = Dann()

    def C_grid(self) -> list[float]:
        return as_list(self.C)

    @field_validator("n_jobs")
    @classmethod
    def _jobs(cls, v):
        if v == 0 or v < -1:
            raise ValueError("must be >= 1, or -1 for all cores")
        return v


class Operators(Section):
    """``names``, plus one section per operator that has hyper-parameters: ``<operator>: {name: value or
    grid}``, checked against the operator's declared ``hyper`` (and ``bounds``) in its registry entry."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    names: Names = ["none", "translate_single", "translate_avg", "translate_searched", "translate_learned",
                    "text_removal", "center", "whiten", "coral", "selective_whiten"]

    @model_validator(mode="before")
    @classmethod
    def _default_sections(cls, data):
        defaults = {"whiten": {"shrinkage": [0.1, 0.5]}, "coral": {"ridge": [0.1, 1.0]},
                    "selective_whiten": {"n_directions": [16, 64], "shrinkage": 0.1}}
        return {**defaults, **data} if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _sections_are_mappings(self):
        """Each operator's section is a mapping; its keys and values are checked against the operator's
        registry entry by the stage that uses them (:func:`pipeline.operators.check_sections`), so that
        this schema -- read by every stage -- imports no operator."""
        for op_name, section in (self.model_extra or {}).items():
            if not isinstance(section, dict):
                raise ValueError(f"operators.{op_name}: unknown key (an operator's section is a mapping)"
                                 + did_you_mean(op_name, ["names"], "operators.{}", cutoff=0.5))
        return self

    def grids(self) -> dict[str, dict]:
        return dict(self.model_extra or {})


class ArcFaceParams(Section):
    s: Positive = 5.0
    m: Annotated[float, Field(ge=0, lt=1.5707963267948966)] = 0.5
    epochs: PositiveInt = 50
    lr: Positive = 0.005
    momentum: Momentum = 0.9
    batch_size: PositiveInt = 128
    seed: NonNegInt = 0


class PromptStyler(Section):
    k: PositiveInt = 80
    iterations: NonNegInt = 100
    lr: Positive = 0.002
    momentum: Momentum = 0.9
    init_std: Positive = 0.02
    seed: NonNegInt = 0
    arcface: ArcFaceParams = ArcFaceParams()


class Translate(Section):
    alpha: FloatGrid = [0.5, 1.0]
    normalize_before: bool = False
    normalize_after: bool = False


class EvaluationRay(Section):
    address: str | None = None  # None: a local Ray started by the stage; auto / ray://host:10001: a cluster
    workers: PositiveInt = 2  # CPUs of the local Ray (how many jobs run at once there)


class Evaluation(Section):
    trials: PositiveInt = 3  # train / validation / test partitions, one seed each (pipeline/partition.py)
    selection: Names = ["train_val", "oracle"]  # + lodo_val (doubles the cost: 12 more settings per trial)
    image_free: list[str] = ["zeroshot", "promptstyler"]
    cache_dir: str = "cache/cells"  # the cell cache (pipeline/cellcache.py), kept across runs
    engine: Literal["local", "ray"] = "local"  # where the jobs run (pipeline/engines.py)
    preview: bool = True  # time the solvers first and log the plan's estimated time (pipeline/preview.py)
    warm_starts: bool = True  # exact probes start near their minimiser: stored coefficients at the nearest C (pipeline/starts.py), else the previous trial's fit
    ray: EvaluationRay = EvaluationRay()

    @field_validator("selection", "image_free")
    @classmethod
    def _no_duplicates(cls, v, info):
        return _unique(v, info.field_name)  # the names are checked by their registries where they are used


class Gap(Section):
    metrics: Names = ["fid", "kid", "mmd", "cmmd", "coral", "bures", "corr"]
    n_boot: Annotated[int, Field(ge=2)] = 20
    n_subsets: Annotated[int, Field(ge=2)] = 20
    subset_size: Annotated[int, Field(ge=2)] = 500
    clamp_subset_size: bool = False
    cmmd_estimator: Literal["vstat", "ustat"] = "vstat"
    ci: Fraction = 0.95
    seed: NonNegInt = 0
    n_jobs: PositiveInt = 2


FewshotK = Annotated[int, Field(ge=3)] | Literal["all"]


class Fewshot(Section):
    k: Annotated[list[FewshotK], Field(min_length=1)] = [5, 10, 20, 50, 100, 200, "all"]
    draws: PositiveInt = 10
    metrics: Names | None = None  # None: every gap.metrics entry with a few-shot estimator
    n_boot: Annotated[int, Field(ge=2)] = 20
    seed: NonNegInt = 0


class LearnDescriptions(Section):
    steps: NonNegInt = 200
    lr: Positive = 0.01
    contrast: NonNeg = 0.5
    init_std: Positive = 0.02
    seed: NonNegInt = 0


class Descriptions(Section):
    candidates: dict[str, Annotated[list[str], Field(min_length=1)]] = {}  # {domain: pool} over the built-in pools
    select: Literal["sim", "specificity"] = "sim"
    learn: LearnDescriptions = LearnDescriptions()


class Layerwise(Section):
    probes: Names = ["logreg"]
    gap_metrics: Names = ["fid", "kid", "coral"]


class Params(Section):
    data: Data = Data()
    model: Model = Model()
    clip: Clip = Clip()
    embed: Embed = Embed()
    prompts: Prompts = Prompts()
    classifier: Classifier = Classifier()
    operators: Operators = Operators()
    promptstyler: PromptStyler = PromptStyler()
    translate: Translate = Translate()
    evaluation: Evaluation = Evaluation()
    gap: Gap = Gap()
    fewshot: Fewshot = Fewshot()
    layerwise: Layerwise = Layerwise()
    descriptions: Descriptions = Descriptions()

    @model_validator(mode="after")
    def _features_embedded(self):
        if self.classifier.features not in (self.embed.features, "both") and self.embed.features != "both":
            raise ValueError(f"classifier.features: {self.classifier.features} features are not embedded "
                             f"(embed.features: {self.embed.features}); set embed.features: both")
        if self.embed.features == "pooled" and self.evaluation.image_free:
            raise ValueError(f"evaluation.image_free: {self.evaluation.image_free[0]} reads the joint image-text space, "
                             "which embed.features: pooled does not embed; set embed.features: both")
        return self


# --------------------------------------------------------------------------------------- loading
def _valid_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the section at ``loc`` (where an unknown key was found)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        model = field.annotation
    return list(model.model_fields)


_UNION_TAG = re.compile(r"^(float|int|bool|str|constrained-\w+|list\[.*\]|dict\[.*\])$")


def _describe(err: dict) -> str:
    """One pydantic error as 'key: problem' (a value-or-grid field reports its scalar branch)."""
    loc = tuple(err["loc"])
    if any(isinstance(x, str) and _UNION_TAG.match(x) for x in loc):
        loc = tuple(x for x in loc if not (isinstance(x, str) and _UNION_TAG.match(x)))
        err = {**err, "msg": err["msg"] + " (or a non-empty list of such values)"}
    key = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        where = ".".join([*map(str, loc[:-1]), "{}"])
        return f"{key}: unknown key" + did_you_mean(loc[-1], _valid_keys(Params, loc), where, cutoff=0.5)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"{key}: missing"
    if not key or msg.startswith((key + ".", key + ":")):  # the message names its keys itself
        return msg
    return f"{key}: {msg} (got {err['input']!r})" if not isinstance(err["input"], dict) else f"{key}: {msg}"


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate a params mapping; :class:`ParamsError` lists every problem on one line."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = list(dict.fromkeys(_describe(e) for e in exc.errors()))  # a union reports each branch
        keys = [m.split(":")[0] for m in problems]
        problems = [m for i, m in enumerate(problems) if keys.index(keys[i]) == i]  # first problem per key
        raise ParamsError(f"{source}: " + "; ".join(problems)) from None


def apply_overrides(raw: dict | None, sets=()) -> dict:
    """``raw`` with ``section.key=value`` overrides (YAML values), as ``dvc exp run -S`` applies them."""
    raw = dict(raw or {})
    for item in sets:
        if "=" not in item:
            raise ParamsError(f"-S {item!r}: expected section.key=value")
        path, value = item.split("=", 1)
        *parents, leaf = path.strip().split(".")
        node = raw
        for k in parents:
            node[k] = dict(node.get(k) or {})
            node = node[k]
        try:
            node[leaf] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ParamsError(f"-S {item!r}: the value is not valid YAML") from None
    return raw


def load_params(path: str | Path = "params.yaml", sets=()) -> Params:
    """``params.yaml`` as a validated :class:`Params` (the one way stages read their knobs); ``sets``:
    ``section.key=value`` overrides (:func:`apply_overrides`)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_params(apply_overrides(raw, sets) if sets else raw, str(path))


def project_path(path: str | Path) -> Path:
    """A params path as the project sees it: absolute paths as they are, relative ones against the
    project root -- ``$DVC_ROOT``, which DVC sets to the *original* project even when an experiment
    runs in a temporary copy (``dvc exp run --temp`` / ``--queue``), else the working directory.
    So ``data.root: ../shared/pacs`` and the caches resolve to the same place in every workspace."""
    path = Path(os.path.expanduser(str(path)))
    return path if path.is_absolute() else Path(os.environ.get("DVC_ROOT") or os.getcwd()) / path


def split_model_name(name: str) -> tuple[str | None, str]:
    """``"family:path"`` -> (family, path); a bare path (or an existing directory whose name has a colon) ->
    (None, path). The family is checked by the encoder registry (:mod:`pipeline.encoders`)."""
    m = re.match(r"^([a-z][a-z0-9_]*):(?!//)(.+)$", name)
    return (m.group(1), m.group(2)) if m and not Path(name).exists() else (None, name)


def model_dir(path: str) -> Path:
    """A model directory as this workspace sees it: relative to the working directory when it is there (a
    model trained in this workspace: models/miniclip), else relative to the project ($DVC_ROOT: a model
    saved once in the project, seen from a DVC temporary / queued workspace)."""
    p = Path(os.path.expanduser(path))
    root = os.environ.get("DVC_ROOT")
    if p.is_absolute() or p.exists() or not root or not (Path(root) / p).exists():
        return p
    return Path(root) / p


def check_model_name(name: str) -> Path:
    """The directory of ``model.name`` (an optional family prefix and a directory); a missing one is refused
    with the command that makes it, without importing any model code (the family is checked by
    :func:`pipeline.encoders.resolve_model`)."""
    if name == "miniclip":
        raise ParamsError(f"model.name: write {MINICLIP_DIR!r}, the directory stage train_clip writes")
    path = split_model_name(name)[1]
    if model_dir(path).is_dir():
        return model_dir(path)
    if Path(path) == Path(MINICLIP_DIR):
        raise ParamsError(f"model.name={name!r}: stage train_clip writes it: run `dvc repro`")
    hub = re.fullmatch(r"(hf-hub:)?[\w.-]+/[\w.-]+", path) and not Path(path).parent.is_dir()
    base = Path(path.removeprefix("hf-hub:")).name
    hint = (f"a hub id is not a directory the pipeline can fingerprint: save it once with `clipdg fetch {path} "
            f"models/{base}` (network or a filled HF cache), then set model.name: models/{base}") if hub \
        else "no such directory"
    raise ParamsError(f"model.name={name!r}: {hint}")
