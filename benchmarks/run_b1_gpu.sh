#!/usr/bin/env bash
# B1 on one GPU: each (seed, group of methods) is its own process, all sharing the card.
# Usage: NPZ=path/to/cifar10_jpeg_yoongikim.npz OUT=dir bash benchmarks/run_b1_gpu.sh GROUP [seeds...]
#   GROUP=baselines: ce la ldam_drw | cdt vs      GROUP=autobalance: ce+autobalance | ldam_drw
#   (the CE inside the AutoBalance process gives the side-by-side time ratio)
# Wall times of concurrent processes share the GPU and CPU: compare them only within a process.
set -u
NPZ=${NPZ:?set NPZ to the lossy-JPEG CIFAR-10 npz}
OUT=${OUT:-benchmarks/results}
GROUP=$1; shift
SEEDS=${*:-0 1 2}
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
b1() { tag=$1; shift; python3 benchmarks/b1_cifar10_lt.py --data "$NPZ" --out "$OUT/b1_$tag.json" "$@" \
  > "$OUT/b1_$tag.log" 2>&1 & }
for s in $SEEDS; do
  if [ "$GROUP" = baselines ]; then
    b1 "s${s}_a" --seeds "$s" --methods ce la ldam_drw
    b1 "s${s}_b" --seeds "$s" --methods cdt vs
  else
    b1 "s${s}_ab" --seeds "$s" --methods ce autobalance
    b1 "s${s}_ldam" --seeds "$s" --methods ldam_drw
    b1 "s${s}_abhead" --seeds "$s" --methods autobalance --set hyper.scope=head hyper.method=cg \
      hyper.iterations=20
  fi
done
wait
