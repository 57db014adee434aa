#!/usr/bin/env bash
# Run `dvc repro` in a scratch clone of HEAD on 60 images per PACS domain x class with the pipeline's own
# MiniCLIP trained inside the run (a model with real signal: zero-shot well above chance), store the headline
# metrics as ci/metrics.json and the training curves as ci/plots/, diff both against HEAD~1's and render the
# report (markdown + images, as CML's workflow does) into ci-report/ of this checkout. Then plant a broken
# classifier (probes fit on shuffled labels), rerun, and fail unless the diff moves.
# `bash .ci/pipeline.sh --update` copies the fresh ci/ files back into this checkout to commit; run it in CI's
# environment (`env -i HOME=$HOME PATH=.venv/bin:/usr/bin:/bin bash .ci/pipeline.sh --update`): a BLAS kernel
# choice such as OPENBLAS_CORETYPE moves the third digit of some cells.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
PACS_ROOT=${PACS_ROOT:-$(dirname "$repo")/shared/pacs}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DVC_NO_ANALYTICS=1 HF_HUB_OFFLINE=1

python -c "from pipeline.data import make_subset; make_subset('$PACS_ROOT', '$work/pacs', 60)"
git clone -q "$repo" "$work/repo"
cd "$work/repo"
python - "$work" <<'PY'
import sys, yaml
work = sys.argv[1]
p = yaml.safe_load(open("params.yaml"))
p["data"]["root"] = f"{work}/pacs"
p["model"]["name"] = "models/miniclip"  # trained by stage train_clip on the subset's train split
p["clip"].update(pairings=[["resnet", "minilm"]], use=["resnet", "minilm"], image_size=32, embed_dim=32,
                 resnet={"width": 16, "blocks": 1}, epochs=10, batch_size=64, lr=0.003,
                 train_domains=None, captions="domain_and_class")  # the contaminated proxy: signal within CI's minutes
p["classifier"]["dann"]["steps"] = 100
p["promptstyler"].update(k=4, iterations=10)
p["evaluation"]["image_free"] = ["zeroshot", "promptstyler"]
p["gap"]["subset_size"] = 100  # 420 images in the smallest domain: two disjoint subsets of at most 210
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
PY
git -c user.name=ci -c user.email=ci@ci commit -qam "CI params"
start=$(date +%s)
dvc repro > "$work/repro.log" 2>&1 || { tail -n 60 "$work/repro.log"; echo "dvc repro failed"; exit 1; }
grep -E "^(Running stage|prepare:|model:|embed_images:|embed_prompts:|evaluate:)" "$work/repro.log"
echo "dvc repro: $(( $(date +%s) - start )) s"
python - <<'PY'
import json
m = json.load(open("reports/metrics.json"))
chance = 1 / len(json.load(open("data/classes.json"))["classes"])
zs = m["zeroshot"]["zeroshot"]["mean"]
print(f"zero-shot {zs:.4f} (chance {chance:.4f}); LODO logreg {m['lodo']['logreg']['mean']:.4f}")
assert zs > 2 * chance, f"CI's MiniCLIP has no signal: zero-shot {zs} <= 2 x chance {2 * chance:.4f}"
PY
rm -rf ci/plots && mkdir -p ci/plots
cp reports/metrics.json ci/metrics.json
for s in train_clip learn_styles train_arcface; do cp -r "reports/$s/plots/metrics" "ci/plots/$s"; done
base=HEAD~1
git rev-parse -q --verify "$base" > /dev/null || base=HEAD
echo "== dvc metrics diff $base (ci/metrics.json: CI subset + MiniCLIP trained in CI)"
dvc metrics diff "$base" --targets ci/metrics.json --md --all
rm -rf "$repo/ci-report"
clipdg report --base "$base" --out "$repo/ci-report" --metrics ci/metrics.json --plots ci/plots > /dev/null
echo "report (metrics diff + $(grep -c "^!\[" "$repo/ci-report/report.md") plot images): $repo/ci-report/report.md"
if [ "${1:-}" = "--update" ]; then
  rm -rf "$repo/ci/plots" "$repo/ci/domain_gap.json" "$repo/ci/diagnostics.json"
  cp -r ci/metrics.json ci/plots "$repo/ci/"
  echo "updated $repo/ci/metrics.json and $repo/ci/plots"
fi

echo "== planted breakage: probes fit on shuffled labels"
cp reports/metrics.json "$work/good.json"
python "$repo/.ci/plant_breakage.py" .
dvc repro > "$work/broken.log" 2>&1 || { tail -n 40 "$work/broken.log"; echo "dvc repro (planted) failed"; exit 1; }
python "$repo/.ci/check_breakage.py" "$work/good.json" reports/metrics.json
