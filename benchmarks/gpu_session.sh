#!/usr/bin/env bash
# One prepared device session, in one call: the GPU check, the committed recipe trained on the GPU
# within a time budget, and that model's evaluation, everything the session must bring back under OUT.
#
#   bash benchmarks/gpu_session.sh OUT [TRAIN_MINUTES] [PRESET] [DEVICE]
#
# defaults: TRAIN_MINUTES 4, PRESET gpu_minutes, DEVICE cuda. PYTHON (default python3) runs it;
# the package is imported from this checkout (PYTHONPATH), so nothing is installed. Wheels in .whl/
# (e.g. diffusers and importlib_metadata for the HunyuanVideo checks, where the machine lacks them)
# are unpacked to /tmp/site first; fetch them here with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl diffusers==0.42.1 importlib_metadata
# and name .whl in the device call's carry. EVAL_SEEDS (default 16) and EVAL_FRAMES (64) size the evaluation.
# Rehearse on a CPU: PYTHON=.venv/bin/python EVAL_SEEDS=1 EVAL_FRAMES=9 bash benchmarks/gpu_session.sh /tmp/gs 1 smoke cpu
#
# OUT gets at most 8 files: gpu_check.json/.log (CUDA only), train.log, log.jsonl, evaluate.log,
# filmstrips.png, tiny/model.safetensors, tiny/config.json (the trained export, with its record).
set -uo pipefail
OUT=${1:?usage: gpu_session.sh OUT [TRAIN_MINUTES] [PRESET] [DEVICE]}
MINUTES=${2:-4}
PRESET=${3:-gpu_minutes}
DEVICE=${4:-cuda}
PY=${PYTHON:-python3}
RUN=${RUN_DIR:-/tmp/framepack_gpu_session}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
mkdir -p "$OUT/tiny" && rm -rf "$RUN"
if compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
status=0
t0=$(date +%s)
if [ "$DEVICE" = cuda ]; then
  "$PY" benchmarks/gpu_check.py --out "$OUT/gpu_check.json" 2>&1 | tee "$OUT/gpu_check.log" || status=1
  echo "gpu_check: $(( $(date +%s) - t0 )) s"
fi
t1=$(date +%s)
"$PY" -m framepack_lab.train --preset "$PRESET" --device "$DEVICE" --out "$RUN" --max-minutes "$MINUTES" --no-progress \
  2>&1 | tee "$OUT/train.log" || status=1
echo "train: $(( $(date +%s) - t1 )) s"
cp "$RUN/log.jsonl" "$OUT/" 2>/dev/null
cp "$RUN/tiny/model.safetensors" "$RUN/tiny/config.json" "$OUT/tiny/" 2>/dev/null || status=1
t2=$(date +%s)
"$PY" -m framepack_lab.evaluate --checkpoint "$RUN/tiny" --seeds "${EVAL_SEEDS:-16}" --frames "${EVAL_FRAMES:-64}" \
  --plot "$OUT/filmstrips.png" 2>&1 | tee "$OUT/evaluate.log" || status=1
echo "evaluate: $(( $(date +%s) - t2 )) s; whole session: $(( $(date +%s) - t0 )) s; status $status"
exit $status
