#!/usr/bin/env bash
# Every checkpoint-dependent figure of the README, re-measured in one call: what a new checkpoint
# must be scored with before it ships. Two lanes of one thread each run side by side (on 2 cores
# that is the fastest split: two torch processes of 2 threads each slow each other 5-25x).
#
#   bash benchmarks/figures.sh OUT [CHECKPOINT] [PRESET] [COMPARE]
#
# CHECKPOINT: a tiny checkpoint folder (default: the shipped one). PRESET: full (default, the
# README's figures; for the shipped model on a 2-core CPU lane A takes 41 min and lane B 58, side
# by side) or smoke (seconds, a rehearsal). COMPARE: another checkpoint to time against side by
# side (the speed ratio).
#
# lane A: evaluate, 16 held-out worlds x 64 frames, filmstrips, history-noise sweep, speed ratio;
#         then the toy Table 2
# lane B: evaluate at 256 frames (8 worlds), its filmstrips; then the +D codebook sweep; then the
#         forgetting probe
# OUT gets one .log per job and the PNGs the README shows (evaluate_filmstrips.png,
# evaluate_filmstrips_256.png, table2.png, codebook_sweep.png, forgetting.png); copy the PNGs to
# docs/ when the checkpoint ships. Exit status: non-zero when any job failed (its log says why).
set -uo pipefail
OUT=${1:?usage: figures.sh OUT [CHECKPOINT] [PRESET] [COMPARE]}
CKPT=${2:-}
PRESET=${3:-full}
COMPARE=${4:-}
PY=${PYTHON:-python3}
case "$PRESET" in
  full) EV64=(--seeds 16 --frames 64) EV256=(--seeds 8 --frames 256) ;;
  smoke) EV64=(--seeds 2 --frames 9 --steps 2) EV256=(--seeds 1 --frames 17 --steps 2) ;;
  *) echo "figures.sh: PRESET must be full or smoke, not '$PRESET'" >&2; exit 2 ;;
esac
for c in "$CKPT" "$COMPARE"; do
  if [ -n "$c" ] && [ ! -f "$c/model.safetensors" ]; then
    echo "figures.sh: no checkpoint in '$c' (need $c/model.safetensors); train one: python -m framepack_lab.train --out DIR, then DIR/tiny" >&2
    exit 2
  fi
done
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg
mkdir -p "$OUT"
CK=()
[ -n "$CKPT" ] && CK=(--checkpoint "$CKPT")

job() {  # job NAME CMD...: run one job, its output in OUT/NAME.log, a line with its time and status
  local name=$1 t0=$SECONDS; shift
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name: $(( SECONDS - t0 )) s, exit $rc"
  return $rc
}

lane_a() {
  local rc=0
  job evaluate_64 "$PY" -m framepack_lab.evaluate "${CK[@]}" "${EV64[@]}" --sweep --plot "$OUT/evaluate_filmstrips.png" \
    ${COMPARE:+--compare "$COMPARE"} || rc=1
  job table2 "$PY" -m framepack_lab.table2 "${CK[@]}" --preset "$PRESET" --out "$OUT" || rc=1
  return $rc
}

lane_b() {
  local rc=0
  job evaluate_256 "$PY" -m framepack_lab.evaluate "${CK[@]}" "${EV256[@]}" --plot "$OUT/evaluate_filmstrips_256.png" || rc=1
  job codebook_sweep "$PY" -m framepack_lab.codebook_sweep "${CK[@]}" --preset "$PRESET" --out "$OUT" || rc=1
  job forgetting "$PY" -m framepack_lab.forgetting "${CK[@]}" --preset "$PRESET" --out "$OUT" || rc=1
  return $rc
}

lane_a & a=$!
lane_b & b=$!
status=0
wait $a || status=1
wait $b || status=1
echo "figures in $OUT (status $status)"
exit $status
