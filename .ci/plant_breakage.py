"""Plant a broken classifier in a scratch clone (CI only): the linear probes train on shuffled labels.
`.ci/pipeline.sh` reruns the pipeline with it and checks that the headline metrics move."""
import sys
from pathlib import Path

path = Path(sys.argv[1]) / "pipeline" / "probes" / "__init__.py"
src = path.read_text()
anchor = "    Xs = scaler.transform(X) if standardize else X\n"
if anchor not in src:
    sys.exit(f"plant_breakage: {path} no longer has the line it edits; update .ci/plant_breakage.py")
path.write_text(src.replace(anchor, anchor + "    import numpy as np\n    y = np.random.default_rng(0).permutation(y)  # planted\n"))
print(f"planted: {path} fits every probe on shuffled labels")
