#!/usr/bin/env bash
# Every benchmark that needs a GPU, in one command, within about 8 minutes on one GPU:
#   1. bench/recipe.py --device cuda: the 10-epoch lecture recipe, the slide's eager code vs
#      netscope (CUDA graphs, fused SGD, TF32, channels_last), each variant in a fresh process;
#   2. bench/public_record.py: our `fast` recipe vs tuomaso/train_mnist_fast (time to ≤ 1 % test
#      error), both on this GPU; the record's notebook is read from a checkout outside this repo;
#   3. bench/analyses.py --device cuda: every analysis vs torchattacks/Foolbox/ART/Captum/lucent.
# Writes bench/RESULTS_gpu.md (device, versions, commands, tables).
#
#   bash bench/gpu.sh [--record-repo PATH]   # on a GPU machine
#   bash bench/gpu.sh --dry-run              # each step for a few iterations on the CPU (~2 min);
#                                            # writes to a temporary folder, not bench/
# Environment: PYTHON (default: python), RECORD_REPO (default below).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
RECORD_REPO=${RECORD_REPO:-/work/.mirror/tuomaso+train_mnist_fast/repo}
DRY=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --dry-run) DRY=1 ;;
    --record-repo) RECORD_REPO=$2; shift ;;
    *) echo "gpu.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
WORK=$(mktemp -d)
if [[ $DRY == 1 ]]; then
  DEVICE=cpu OUT=$WORK/RESULTS_gpu.md
  RECIPE=(--epochs 1 --variants slide netscope --limit 2000)
  RECORD=(--seeds 1 --limit 5000)
  ANALYSES=(--quick)
  LIMITS=(120 120 240)
else
  DEVICE=cuda OUT=bench/RESULTS_gpu.md
  # compile and the single-flag ablations are left out to stay within 8 minutes
  RECIPE=(--epochs 10 --variants slide netscope-plain netscope netscope-no-graphs netscope-bf16)
  RECORD=(--seeds 5)
  ANALYSES=()
  LIMITS=(150 90 230)
fi

step() {  # step SECONDS OUTPUT COMMAND...: runs one step with a time limit, says how it ended
  local limit=$1 output=$2
  shift 2
  echo "gpu.sh: $* (at most ${limit} s)" >&2
  local start=$SECONDS
  timeout "$limit" "$@" >"$output" 2>"$output.err"
  local code=$?
  echo "gpu.sh: exit $code after $((SECONDS - start)) s" >&2
  [[ $code == 0 ]] || tail -3 "$output.err" >&2
}

step "${LIMITS[0]}" "$WORK/recipe.jsonl" "$PYTHON" bench/recipe.py --device "$DEVICE" "${RECIPE[@]}"
if [[ -e $RECORD_REPO ]]; then
  step "${LIMITS[1]}" "$WORK/record.jsonl" "$PYTHON" bench/public_record.py --repo "$RECORD_REPO" "${RECORD[@]}"
else
  echo "gpu.sh: no checkout of tuomaso/train_mnist_fast at $RECORD_REPO (--record-repo)" >&2
fi
step "${LIMITS[2]}" "$WORK/analyses.jsonl" "$PYTHON" bench/analyses.py --device "$DEVICE" "${ANALYSES[@]}"

{
  echo "# GPU benchmarks ($(date -u +%Y-%m-%d), \`bash bench/gpu.sh\`)"
  echo
  "$PYTHON" -c "import torch, platform; print('device:', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu (dry run)', '· torch', torch.__version__, '· CUDA', torch.version.cuda, '· Python', platform.python_version())"
  echo
  echo "Commands: \`bench/recipe.py --device $DEVICE ${RECIPE[*]}\`, \`bench/public_record.py ${RECORD[*]}\`, \`bench/analyses.py --device $DEVICE ${ANALYSES[*]}\`"
  echo
  "$PYTHON" bench/tables.py "$WORK/recipe.jsonl" "$WORK/record.jsonl" "$WORK/analyses.jsonl"
} >"$OUT"
echo "gpu.sh: wrote $OUT (raw outputs in $WORK)" >&2
