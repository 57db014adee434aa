"""Where the evaluation's jobs run (local processes, Ray) and what the plan says before anything is fit."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.cellcache import CellCache
from pipeline.engines import ENGINES, run_ray_pids
from pipeline.evaluation import _run_job, job_calls, plan, shared_data
from pipeline.preview import preview, summarize
from test_evaluation import DOMAINS, params, run, synthetic

REPO = Path(__file__).resolve().parents[1]


def grid_params(**extra):
    return params(classifier={"probes": ["logreg", "svm", "dann"], "C": [0.1, 1.0], "n_jobs": 2,
                              "dann": {"steps": 10, "domain_weight": 1.0}},
                  operators={"names": ["none", "center", "translate_avg", "coral"]},
                  evaluation={"trials": 2, "preview": False, **extra})


def test_the_plan_counts_every_cell_and_the_estimate_prices_each_job():
    images, X, text, _ = synthetic()
    p = grid_params()
    cache = CellCache(None)
    pl = plan(images, X, DOMAINS, p, cache, False, text)
    pv = summarize(pl)
    assert pv.cells == len(pl.cells) and pv.to_compute == pv.cells and pv.cached == 0
    # logreg and svm: 2 trials x (4 in-domain settings with no operator + 16 cross-domain settings x 5
    # operator variants: none, center, translate_avg, coral at two ridges) x 2 Cs; dann: 2 trials x 16
    per_probe = 2 * (4 + 16 * 5) * 2
    assert pv.by_learner == {"logreg": per_probe, "svm": per_probe, "dann": 2 * 16}
    assert sum(pv.by_operator.values()) == pv.to_compute
    timed = preview(X, images, pl, p, workers=2)
    assert 0 < timed.seconds <= timed.cpu_seconds and "estimated" in timed.line()
    assert {("logreg", 0.1), ("svm", 1.0), "dann", "map"} <= set(timed.rates)
    # once the cells are cached the plan has nothing left, and says so without timing anything
    run(images, X, text, grid_params(), cache=cache)
    again = preview(X, images, plan(images, X, DOMAINS, p, cache, False, text), p, workers=2)
    assert (again.to_compute, again.cached, again.seconds, again.calibration_s) == (0, pv.cells, 0.0, 0.0)


def test_stage_evaluate_reports_its_plan_and_time():
    images, X, text, class_w = synthetic()
    _, info = run(images, X, text, params(evaluation={"trials": 1, "preview": True}), class_w)
    assert info["plan"]["to_compute"] == info["computed"] and info["plan"]["estimated_seconds"] > 0
    assert info["seconds"] > 0


def test_ray_engine_cells_equal_the_local_engines_and_both_workers_ran_jobs():
    pytest.importorskip("ray")
    images, X, text, _ = synthetic(n=30)
    p = grid_params()
    pl = plan(images, X, DOMAINS, p, CellCache(None), False, text)
    shared = shared_data(images, X, pl.parts, text)
    calls = job_calls(shared, p, pl)
    local = {}
    for _, result in ENGINES["local"](_run_job, shared, calls, workers=2):
        local.update(result["cells"])
    ray_cells, pids = {}, set()
    for _, (pid, result) in run_ray_pids(_run_job, shared, calls, workers=2):
        ray_cells.update(result["cells"])
        pids.add(pid)
    assert len(local) == sum(len(k) for _, trials in pl.probe_jobs for _, js in trials for *_, k in js) + sum(len(t) for *_, t in pl.adapter_jobs)
    assert ray_cells == local
    assert len(pids) == 2 and os.getpid() not in pids  # both Ray workers ran jobs


KILLED = textwrap.dedent("""
    import sys
    sys.path[:0] = [{tests!r}, {repo!r}]
    from test_evaluation import DOMAINS, params, run, synthetic
    images, X, text, _ = synthetic(n=200, d=64)
    p = params(classifier={{"probes": ["dann"], "n_jobs": 2, "dann": {{"steps": 100000}}}},
               evaluation={{"trials": 3, "engine": {engine!r}, "preview": False}})
    print("started", flush=True)
    run(images, X, text, p)
""")


def descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout.split()
    kids: dict = {}
    for child, parent in zip(out[::2], out[1::2]):
        kids.setdefault(int(parent), []).append(int(child))
    found, todo = set(), [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            found.add(c)
            todo.append(c)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


@pytest.mark.slow  # starts the workers, then a local Ray: ~40 s
@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="reads /proc")
@pytest.mark.parametrize("engine", ["local", "ray"])
def test_killing_evaluate_leaves_no_worker_behind(engine, tmp_path):
    if engine == "ray":
        pytest.importorskip("ray")
    script = tmp_path / "run.py"
    script.write_text(KILLED.format(tests=str(REPO / "tests"), repo=str(REPO), engine=engine))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().strip() == "started"
    workers: set[int] = set()
    deadline = time.time() + 60
    while time.time() < deadline and len(workers) < 2:  # the job processes (and a local Ray's) are up
        time.sleep(1)
        workers |= descendants(proc.pid)
    time.sleep(3)
    workers |= descendants(proc.pid)
    assert len(workers) >= 2, workers
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(alive(w) for w in workers):
        time.sleep(0.5)
    left = [w for w in workers if alive(w)]
    assert not left, f"{engine}: processes {left} outlived a killed evaluate"
