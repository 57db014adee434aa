"""Every stage's deps in dvc.yaml (and models/dvc.yaml) hold every project module its script imports,
transitively: an edit to any of them reruns the stage, so no result can go stale."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PIPELINE_FILES = [REPO / "dvc.yaml"]


def _module_file(name: str) -> Path | None:
    """The project file of a dotted module name (``pipeline.x`` / ``_common``), or None if not ours."""
    if name == "_common":
        return REPO / "stages" / "_common.py"
    if name == "pipeline" or name.startswith("pipeline."):
        path = REPO.joinpath(*name.split("."))
        return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return None


def imports_of(path: Path) -> set[Path]:
    """Project files ``path`` imports anywhere in its body (top level or inside functions). A module that
    builds a registry over its package's modules (``Registry(..., __name__)`` in an ``__init__``, or
    ``Registry(..., __package__)``) imports every one of them when the registry is read."""
    parts = path.relative_to(REPO).with_suffix("").parts
    package = ".".join(parts if path.name == "__init__.py" else parts[:-1]).removesuffix(".__init__")
    source = path.read_text()
    found: set[Path] = set()
    if "Registry(" in source and ("__package__)" in source or (path.name == "__init__.py" and "__name__)" in source)):
        found |= {f for f in path.parent.glob("*.py") if f != path}
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to this module's package
                pkg = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*pkg, base]) if base else ".".join(pkg)
            names = [base] + [f"{base}.{a.name}" for a in node.names]  # `from pipeline import x` -> pipeline/x.py
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing pipeline.x runs pipeline/__init__.py first
                f = _module_file(".".join(parts[:i]))
                if f is not None and f.is_file():
                    found.add(f)
    return found - {path}


def closure(script: Path) -> set[Path]:
    todo, seen = [script], {script}
    while todo:
        for f in imports_of(todo.pop()):
            if f not in seen:
                seen.add(f)
                todo.append(f)
    return seen


def stages():
    for file in PIPELINE_FILES:
        spec = yaml.safe_load(file.read_text())
        for name, stage in spec["stages"].items():
            wdir = (file.parent / stage.get("wdir", ".")).resolve()
            yield file, name, stage, wdir


@pytest.mark.parametrize("file,name,stage,wdir", list(stages()), ids=lambda v: v if isinstance(v, str) else "")
def test_stage_deps_are_the_import_closure_of_its_script(file, name, stage, wdir):
    script = wdir / stage["cmd"].split()[1]
    assert stage["cmd"].startswith("python stages/") and script.is_file(), stage["cmd"]
    declared = {(wdir / d).resolve() for d in stage.get("deps", []) if str(d).endswith(".py")}
    for d in stage.get("deps", []):  # a registry package as one directory dep: adding an entry is one file
        if str(d).startswith("pipeline/") and (wdir / d).is_dir():
            declared |= {f.resolve() for f in (wdir / d).rglob("*.py")}
    needed = closure(script.resolve())
    rel = lambda s: sorted(str(p.relative_to(REPO)) for p in s)  # noqa: E731
    assert not needed - declared, f"{file.name}:{name} misses deps {rel(needed - declared)}"
    assert not declared - needed, f"{file.name}:{name} lists modules it does not import {rel(declared - needed)}"


def test_closure_follows_relative_and_lazy_imports():
    got = {str(p.relative_to(REPO)) for p in closure(REPO / "stages" / "embed_prompts.py")}
    # the encoder registry reads every family module; open_clip imports randomclip lazily (inside convert)
    assert {"stages/_common.py", "pipeline/__init__.py", "pipeline/encoders/__init__.py", "pipeline/encoders/base.py",
            "pipeline/encoders/miniclip.py", "pipeline/miniclip.py", "pipeline/randomclip.py", "pipeline/params.py",
            "pipeline/errors.py"} <= got


def test_a_stage_runs_its_own_workspace_library(tmp_path):
    """A copied project (DVC's --temp / queue workspaces, scratch clones) imports its own pipeline/, the
    code its dvc.yaml depends on -- not the checkout that is pip-installed in editable mode."""
    import shutil
    import subprocess
    import sys

    for d in ("pipeline", "stages"):
        shutil.copytree(REPO / d, tmp_path / d, ignore=shutil.ignore_patterns("__pycache__"))
    init = tmp_path / "pipeline" / "__init__.py"
    init.write_text(init.read_text() + "\nraise SystemExit('the workspace library was imported')\n")
    r = subprocess.run([sys.executable, "stages/results.py", "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert "the workspace library was imported" in r.stderr, r.stdout + r.stderr


def test_the_library_has_no_import_cycle():
    """Module-level imports between pipeline modules form no cycle (issue 21: encoders and miniclip imported each
    other). A registry's lazy load of its package's modules is inside a function, so it is not an edge here."""
    def top_level_imports(path: Path) -> set[Path]:
        parts = path.relative_to(REPO).with_suffix("").parts
        package = ".".join(parts if path.name == "__init__.py" else parts[:-1]).removesuffix(".__init__")
        found = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*pkg, base]) if base else ".".join(pkg)
                names = [f"{base}.{a.name}" for a in node.names] + [base]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                f = _module_file(name)
                if f is not None and f.is_file() and f != path:
                    found.add(f)
                    break
        return found

    graph = {f: top_level_imports(f) for f in (REPO / "pipeline").rglob("*.py")}
    state: dict[Path, int] = {}

    def visit(f: Path, trail: list[Path]) -> None:
        state[f] = 1
        for g in graph.get(f, ()):
            if state.get(g) == 1:
                cycle = trail[trail.index(g):] + [g] if g in trail else [f, g]
                raise AssertionError("import cycle: " + " -> ".join(str(p.relative_to(REPO)) for p in cycle))
            if g not in state:
                visit(g, trail + [g])
        state[f] = 2

    for f in graph:
        if f not in state:
            visit(f, [f])
