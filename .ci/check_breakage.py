"""Check that the planted breakage moved the headline metrics: every linear probe's cross-domain Avg drops by
at least 0.05 and the image-free methods (which fit no probe) do not move."""
import json
import sys

from pipeline.cireport import flatten, moved

before, after = (json.load(open(p)) for p in sys.argv[1:3])
changes = moved(before, after, 0.05)
for k, (a, b) in sorted(changes.items()):
    print(f"  {k:<45} {a:.4f} -> {b:.4f}")
probes = [k for k in flatten(before) if k.endswith(".mean") and k.split(".")[0] in ("single_source", "lodo")
          and k.split(".")[1] in ("logreg", "svm")]
missed = [k for k in probes if k not in changes or changes[k][1] >= changes[k][0]]
still = [k for k in changes if k.startswith("zeroshot.")]
if missed or still or not probes:
    sys.exit(f"the planted breakage did not move the diff as it should: unmoved {missed}, image-free moved {still}")
print(f"planted breakage moved {len(changes)} headline metrics, every probe's ({len(probes)}) down; image-free unchanged")
