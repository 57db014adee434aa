#!/usr/bin/env bash
# Run `dvc repro` in a scratch clone of HEAD on 10 images per PACS domain x class with a tiny random
# CLIP (seed 0), store the headline metrics as ci/*.json and diff them against HEAD~1's.
# `bash .ci/pipeline.sh --update` copies the fresh ci/*.json back into this checkout to commit; run it in CI's
# environment (`env -i HOME=$HOME PATH=.venv/bin:/usr/bin:/bin bash .ci/pipeline.sh --update`): a BLAS kernel
# choice such as OPENBLAS_CORETYPE moves the third digit of the ill-conditioned single-source CORAL cells.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
PACS_ROOT=${PACS_ROOT:-$(dirname "$repo")/shared/pacs}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DVC_NO_ANALYTICS=1 HF_HUB_OFFLINE=1

clipdg random-clip "$work/clip" --preset tiny --seed 0 > /dev/null
python -c "from pipeline.data import make_subset; make_subset('$PACS_ROOT', '$work/pacs', 10)"
git clone -q "$repo" "$work/repo"
cd "$work/repo"
python - "$work" <<'PY'
import sys, yaml
work = sys.argv[1]
p = yaml.safe_load(open("params.yaml"))
p["data"]["root"] = f"{work}/pacs"
p["model"]["name"] = f"{work}/clip"
p["embed"]["batch_size"] = 32
p["clip"].update(pairings=[["resnet", "minilm"]], use=["resnet", "minilm"], image_size=32, embed_dim=16,
                 resnet={"width": 8, "blocks": 1}, epochs=1, batch_size=32)
p["promptstyler"].update(k=4, iterations=10)
p["gap"]["subset_size"] = 30  # 70 images per domain: two disjoint subsets of at most 35
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
PY
start=$(date +%s)
dvc repro > "$work/repro.log" 2>&1 || { tail -n 60 "$work/repro.log"; echo "dvc repro failed"; exit 1; }
grep -E "^(Running stage|prepare:|model:|embed_images:|embed_prompts:)" "$work/repro.log"
grep -q '"trained": false' reports/retrieval.json || { echo "train_clip trained a MiniCLIP with a transformers model.name"; exit 1; }
echo "dvc repro: $(( $(date +%s) - start )) s"
mkdir -p ci
cp reports/metrics.json ci/metrics.json
cp reports/domain_gap.json ci/domain_gap.json
cp reports/diagnostics.json ci/diagnostics.json
base=HEAD~1
git rev-parse -q --verify "$base" > /dev/null || base=HEAD
echo "== dvc metrics diff $base (ci/*.json: CI subset + random CLIP)"
dvc metrics diff "$base" --targets ci/metrics.json ci/domain_gap.json ci/diagnostics.json --md --all
if [ "${1:-}" = "--update" ]; then
  cp ci/metrics.json ci/domain_gap.json ci/diagnostics.json "$repo/ci/"
  echo "updated $repo/ci/{metrics,domain_gap,diagnostics}.json"
fi
