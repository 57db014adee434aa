"""params.yaml through one typed schema: typos refused at every level with the closest key, types and
ranges checked, one line per problem, and the documented defaults are the ones params.yaml spells out."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.operators import check_sections
from pipeline.params import Params, ParamsError, check_model_name, load_params, parse_params, project_path

REPO = Path(__file__).resolve().parents[1]


def test_params_yaml_validates_and_equals_the_schema_defaults():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert load_params(REPO / "params.yaml").model_dump() == raw == Params().model_dump()


def _every_key(model, prefix=()):
    """(path, value) of every leaf and section of the default params."""
    for k, v in model.items():
        yield (*prefix, k), v
        if isinstance(v, dict) and not all(isinstance(x, str) for x in v.values()):
            yield from _every_key(v, (*prefix, k))


@pytest.mark.parametrize("path", [p for p, _ in _every_key(Params().model_dump())], ids=".".join)
def test_a_typo_is_refused_at_every_level_naming_the_closest_key(path):
    raw = Params().model_dump()
    node = raw
    for k in path[:-1]:
        node = node[k]
    typo = path[-1][:-1] + ("x" if path[-1][-1] != "x" else "y") if len(path[-1]) > 1 else path[-1] + "x"
    node[typo] = node.pop(path[-1])
    with pytest.raises(ParamsError) as err:  # an operator's own section is checked by the operator registry
        check_sections(parse_params(raw).operators.grids())
    msg = str(err.value)
    assert "\n" not in msg and f"{'.'.join([*path[:-1], typo])}: unknown key" in msg
    assert f"did you mean {'.'.join(path)!r}" in msg


@pytest.mark.parametrize("section,key,value,words", [
    ("embed", "batch_size", "abc", "valid integer"),
    ("embed", "batch_size", 0, "greater than or equal to 1"),
    ("embed", "batch_size", 2.5, "valid integer"),
    ("embed", "shard_size", 100, "multiple of batch_size"),
    ("embed", "device", "gpu", "auto, cpu, cuda"),
    ("data", "test_fraction", 0, "greater than 0"),
    ("data", "test_fraction", 1.0, "less than 1"),
    ("data", "classes", [], "at least 1 item"),
    ("data", "domains", ["photo", "photo"], "more than once"),
    ("data", "on_bad_image", "ignore", "'fail' or 'skip'"),
    ("classifier", "C", 0, "greater than 0"),
    ("classifier", "C", "1", "valid number"),
    ("classifier", "standardize", "yes", "valid boolean"),
    ("classifier", "n_jobs", 0, "-1 for all cores"),
    ("classifier", "C", [1.0, 1.0], "more than once"),
    ("classifier", "C", [], "a non-empty list"),
    ("translate", "alpha", "a", "valid number"),
    ("evaluation", "trials", 0, "greater than or equal to 1"),
    ("data", "val_fraction", 1.0, "less than 1"),
    ("gap", "ci", 1.0, "less than 1"),
    ("gap", "n_boot", 1, "greater than or equal to 2"),
    ("gap", "cmmd_estimator", "biased", "'vstat' or 'ustat'"),
    ("prompts", "domains", {"photo": " "}, "maps to an empty text"),
    ("data", "on_duplicate", "ignore", "'keep', 'fail' or 'one'"),
    ("embed", "features", "hidden", "'projected', 'pooled' or 'both'"),
    ("clip", "use", ["vit", "bert"], "not one of pairings"),
])
def test_types_and_ranges_are_checked_naming_the_key(section, key, value, words):
    raw = Params().model_dump()
    raw[section][key] = value
    with pytest.raises(ParamsError, match=words) as err:
        parse_params(raw)
    assert f"{section}" in str(err.value) and "\n" not in str(err.value)


def test_cross_section_rule_names_both_keys():
    with pytest.raises(ParamsError, match="classifier.features: pooled features are not embedded "
                                          r"\(embed.features: projected\); set embed.features: both"):
        parse_params({"classifier": {"features": "pooled"}})
    parse_params({"classifier": {"features": "pooled"}, "embed": {"features": "both"}})
    with pytest.raises(ParamsError, match="evaluation.image_free: zeroshot reads the joint image-text space"):
        parse_params({"classifier": {"features": "pooled"}, "embed": {"features": "pooled"}})


def test_model_name_must_be_a_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParamsError, match="stage train_clip writes it"):
        check_model_name("models/miniclip")
    (tmp_path / "clip-b32").mkdir()
    assert check_model_name("clip-b32") == Path("clip-b32") == check_model_name("hf_clip:clip-b32")
    with pytest.raises(ParamsError, match="clipdg fetch openai/clip-vit-base-patch32 models/clip-vit-base-patch32"):
        check_model_name("openai/clip-vit-base-patch32")
    with pytest.raises(ParamsError, match="clipdg fetch hf-hub:laion/CLIP-ViT-B-32 models/CLIP-ViT-B-32"):
        check_model_name("open_clip:hf-hub:laion/CLIP-ViT-B-32")
    with pytest.raises(ParamsError, match="write 'models/miniclip'"):
        check_model_name("miniclip")
    (tmp_path / "models").mkdir()
    with pytest.raises(ParamsError, match="no such directory"):
        check_model_name("models/typo")


def test_project_paths_resolve_against_dvc_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "project"))
    assert project_path("../shared/pacs") == tmp_path / "project" / "../shared/pacs"
    assert project_path("/abs/x") == Path("/abs/x")
    monkeypatch.delenv("DVC_ROOT")
    monkeypatch.chdir(tmp_path)
    assert project_path("cache") == tmp_path / "cache"


@pytest.mark.parametrize("text,words", [
    ("classifer:\n  C: 1.0\n", "classifer: unknown key (did you mean 'classifier'?)"),
    ("embed:\n  batch_size: abc\n", "embed.batch_size: Input should be a valid integer (got 'abc')"),
    ("data: [1, 2\n", "not valid YAML"),
])
def test_a_stage_refuses_bad_params_in_one_line(text, words, tmp_path):
    (tmp_path / "params.yaml").write_text(text)
    r = subprocess.run([sys.executable, str(REPO / "stages" / "prepare.py"), "--params", "params.yaml"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, DVC_ROOT=str(tmp_path)))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == f"error: params.yaml: {words}" if "YAML" not in words \
        else words in r.stderr


@pytest.mark.parametrize("section,words", [
    ({"whiten": {"shrinkage": 1.5}}, r"operators.whiten.shrinkage: 1.5 must be a float in \[0.0, 1.0\]"),
    ({"selective_whiten": {"n_directions": [16, 2.5]}}, "operators.selective_whiten.n_directions: 2.5 must be a int"),
    ({"coral": {"ridge": [0.1, 0.1]}}, "operators.coral.ridge: a grid needs distinct values"),
    ({"whitn": {"shrinkage": 0.1}}, "operators.whitn: unknown key \\(did you mean 'operators.whiten'\\?\\)"),
])
def test_operator_sections_are_checked_against_the_operator(section, words):
    with pytest.raises(ParamsError, match=words):
        check_sections(parse_params({"operators": section}).operators.grids())
