"""Seconds of one probe's C path on one thread, as a job of stage evaluate fits it: the synthetic PACS world
(512-d), the train rows of photo + art_painting + cartoon, `fit_probes([probe], X, y, [0.01, 0.1, 1])`;
with the L-BFGS iterations / Newton class-steps per C and, for the log loss, the share of predictions on
every row that agree with scikit-learn's minimiser at tolerance 1e-12.

    python benchmarks/probe_path.py --probe svm
    python benchmarks/probe_path.py --probe logreg --reference
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.evaluation import one_thread  # noqa: E402
from pipeline.probes import fit_probes  # noqa: E402
from pipeline.synthetic import pacs_world  # noqa: E402

CS = [0.01, 0.1, 1.0]


def main(probe: str = "logreg", reference: bool = False, rounds: int = 2) -> None:
    images, X, _, _ = pacs_world(dim=512, seed=0)
    dom, y = images.domain.to_numpy(), images.label.to_numpy()
    m = np.isin(dom, ["photo", "art_painting", "cartoon"]) & (np.arange(len(dom)) % 5 != 0)
    Xt, yt = X[m].astype(np.float32), y[m]
    with one_thread():
        for r in range(rounds):
            t0 = time.perf_counter()
            out = fit_probes([probe], Xt.copy(), yt, CS)
            est = [out[probe, C][-1] for C in CS]
            print(f"{probe} round {r}: {time.perf_counter() - t0:.2f} s; L-BFGS iterations "
                  f"{[getattr(e, 'n_iter_', None) for e in est]}, Newton class-steps {[getattr(e, 'newton_steps_', None) for e in est]}")
    if reference:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        sc = StandardScaler().fit(Xt)
        Z = sc.transform(X.astype(np.float32))
        for C in CS:
            ref = LogisticRegression(C=C, tol=1e-12, max_iter=20000).fit(sc.transform(Xt).astype(np.float64), yt)
            agree = (out[probe, C].predict(X.astype(np.float32)) == ref.predict(Z)).mean()
            print(f"C={C}: {100 * agree:.2f} % of predictions equal scikit-learn's at tolerance 1e-12")


if __name__ == "__main__":
    typer.run(main)
