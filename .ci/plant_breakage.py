"""Plant a broken classifier in a scratch clone (CI only): the linear probes train on shuffled labels.
`.ci/pipeline.sh` reruns the pipeline with it and checks that the headline metrics move."""
import sys
from pathlib import Path

path = Path(sys.argv[1]) / "pipeline" / "probes" / "__init__.py"
src = path.read_text()
lines = src.splitlines(keepends=True)
at = [i for i, line in enumerate(lines) if line.startswith("    Xs = scaler.transform(")]
if len(at) != 1:
    sys.exit(f"plant_breakage: {path} no longer has the one line it edits; update .ci/plant_breakage.py")
lines.insert(at[0] + 1, "    import numpy as np\n    y = np.random.default_rng(0).permutation(y)  # planted\n")
path.write_text("".join(lines))
print(f"planted: {path} fits every probe on shuffled labels")
