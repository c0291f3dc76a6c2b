#!/usr/bin/env bash
# B1 on one GPU: each (seed, group of methods) is its own process of b1_cifar10_lt.py, all of
# them sharing the card; the script waits for all, then prints the per-run results.
#
# Usage: NPZ=path/to/cifar10_jpeg_yoongikim.npz bash benchmarks/run_b1_gpu.sh MODE [SEED ...]
#   MODE=paper:       --protocol paper (ResNet-32, E=300): ce | la | ldam_drw | autobalance,
#                     four processes per seed, each logging a line per 10 epochs (a run stopped
#                     by LIMIT still shows its pace)
#   MODE=baselines:   --protocol cpu: ce la ldam_drw | cdt vs
#   MODE=autobalance: --protocol cpu: ce autobalance | ldam_drw | autobalance with head scope and
#                     CG (tag "head"); the CE inside the AutoBalance process gives the side-by-side
#                     time ratio
#   MODE=ablation:    --protocol cpu, tag "ablation" (summary key b1_cpu_ablation): issue 8's
#                     lever table, one process per (seed, lever): the default autobalance and
#                     autobalance+LEVER for each LEVER in $ABLATION, all with the guard's fallback
#                     off (guard.fallback=false), so that each lever's own α* is trained and tested;
#                     the guard's verdict is still measured and recorded in each run's "guard"
#                     (benchmarks/guard_rule.py replays it). Compare with the b1_cpu la row.
# SEEDs default to 0 1 2 (every seed's processes run at once).
# Environment:
#   NPZ      the lossy-JPEG CIFAR-10 npz (required)
#   RESULTS  results folder (default benchmarks/results; OUT is not read): per-run files are
#            $RESULTS/b1/<protocol>[_<tag>]/<method>__s<seed>.json
#   LOGS     log folder (default $RESULTS/logs): one log per process
#   TAG      passed as --tag (runs go to <protocol>_<TAG>, no summary.json update)
#   EXTRA    more b1_cifar10_lt.py arguments for every process, after the mode's own (so they
#            win), e.g. EXTRA="--epochs 2 --n-max 100 --device cpu" for a smoke run on the CPU;
#            a --set in EXTRA must come last and replaces the mode's --set
#   PYTHON   the interpreter (default python3)
#   ABLATION the levers of MODE=ablation (VARIANTS of b1_cifar10_lt.py; default: every issue-8
#            lever, 10 of them, so 11 processes per seed: split seeds or levers over device calls)
#   LIMIT    if set, seconds after which each process is stopped (coreutils timeout), so the
#            script still ends and prints what finished inside a device call's time limit
# Wall times of concurrent processes share the GPU and CPU: compare them only within a process.
# On a lent GPU machine (../shared does not travel: copy the npz into an ignored folder of the
# repo, e.g. .data/, and carry it), with everything coming back as one archive:
#   NPZ=.data/cifar10_jpeg_yoongikim.npz RESULTS=/tmp/b1 LIMIT=520 \
#     bash benchmarks/run_b1_gpu.sh paper 0; tar czf "$OUT/b1_paper.tgz" -C /tmp/b1 .
# Exit status: 0 when every process succeeded, else 1 (the failed logs' tails are printed).
set -u
NPZ=${NPZ:?set NPZ to the lossy-JPEG CIFAR-10 npz}
RESULTS=${RESULTS:-benchmarks/results}
LOGS=${LOGS:-$RESULTS/logs}
TAG=${TAG:-}
EXTRA=${EXTRA:-}
PYTHON=${PYTHON:-python3}
LIMIT=${LIMIT:-}
MODE=${1:?usage: run_b1_gpu.sh paper|baselines|autobalance [SEED ...]}
shift
SEEDS=${*:-0 1 2}
ABLATION=${ABLATION:-old_default no_guard constant_alpha_lr no_alpha_wd rescale_once val_batch \
average soft_error late_start la_tau}
case "$MODE" in
  paper) PROTOCOL=paper ;;
  baselines | autobalance) PROTOCOL=cpu ;;
  ablation)
    PROTOCOL=cpu
    TAG=${TAG:-ablation}
    ;;
  *) echo "unknown mode '$MODE': expected paper, baselines, autobalance or ablation" >&2; exit 2 ;;
esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PYTHONPATH="$HERE/../src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
mkdir -p "$RESULTS" "$LOGS"

# Decode the JPEGs once (load_cifar10_jpeg caches the pixels), not in every process at once.
"$PYTHON" -c 'import sys; from autobalance.data.cifar import load_cifar10_jpeg as f; f(sys.argv[1])' \
  "$NPZ" || exit 1

pids=() names=() runs=()
# b1 NAME TAG [ARGS...]: one background process; its runs are listed for the final table.
b1() {
  local name=$1 tag=$2
  shift 2
  local log="$LOGS/b1_${MODE}_${name}.log"
  local -a tag_args=() limit=()
  [ -n "$tag" ] && tag_args=(--tag "$tag")
  [ -n "$LIMIT" ] && limit=(timeout "$LIMIT")
  # shellcheck disable=SC2086  # EXTRA is split into words on purpose
  ${limit[@]+"${limit[@]}"} "$PYTHON" "$HERE/b1_cifar10_lt.py" --protocol "$PROTOCOL" --data "$NPZ" --results "$RESULTS" \
    ${tag_args[@]+"${tag_args[@]}"} "$@" $EXTRA >"$log" 2>&1 &
  pids+=("$!")
  names+=("$log")
}
# run SEED TAG METHOD...: remember which per-run files the processes should write.
run() {
  local seed=$1 tag=$2
  shift 2
  local folder="$RESULTS/b1/$PROTOCOL${tag:+_$tag}" m
  for m in "$@"; do runs+=("$folder/${m}__s${seed}.json"); done
}

for s in $SEEDS; do
  case "$MODE" in
    paper)
      for m in ce la ldam_drw autobalance; do
        b1 "s${s}_$m" "$TAG" --seeds "$s" --methods "$m" --log-every 10
        run "$s" "$TAG" "$m"
      done
      ;;
    baselines)
      b1 "s${s}_a" "$TAG" --seeds "$s" --methods ce la ldam_drw
      b1 "s${s}_b" "$TAG" --seeds "$s" --methods cdt vs
      run "$s" "$TAG" ce la ldam_drw cdt vs
      ;;
    autobalance)
      b1 "s${s}_ab" "$TAG" --seeds "$s" --methods ce autobalance
      b1 "s${s}_ldam" "$TAG" --seeds "$s" --methods ldam_drw
      b1 "s${s}_abhead" "${TAG:+${TAG}_}head" --seeds "$s" --methods autobalance \
        --set hyper.scope=head hyper.method=cg hyper.iterations=20
      run "$s" "$TAG" ce autobalance ldam_drw
      run "$s" "${TAG:+${TAG}_}head" autobalance
      ;;
    ablation)
      for m in autobalance $(printf 'autobalance+%s ' $ABLATION); do
        b1 "s${s}_$m" "$TAG" --seeds "$s" --methods "$m" --set guard.fallback=false
        run "$s" "$TAG" "$m"
      done
      ;;
  esac
done
echo "b1 $MODE: ${#pids[@]} processes (seeds: $SEEDS), logs in $LOGS"

failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    failed=1
    if [ "$rc" -eq 124 ] && [ -n "$LIMIT" ]; then
      echo "TIMED OUT after LIMIT=${LIMIT}s: ${names[$i]}" >&2
    else
      echo "FAILED (exit $rc): ${names[$i]}" >&2
    fi
    tail -n 20 "${names[$i]}" >&2
  fi
done

"$PYTHON" - "${runs[@]}" <<'EOF'
import json
import sys
from pathlib import Path

print(f"{'run':52s} {'bal.err':>8s} {'error':>8s} {'worst':>8s} {'seconds':>9s}")
for name in sys.argv[1:]:
    path = Path(name)
    label = f"{path.parent.name}/{path.stem}"
    if not path.is_file():
        print(f"{label:52s} MISSING")
        continue
    r = json.loads(path.read_text())
    print(
        f"{label:52s} {r['balanced_error']:8.4f} {r['error']:8.4f} "
        f"{r['worst_class_error']:8.4f} {r['seconds']:9.1f}"
    )
EOF
exit "$failed"
