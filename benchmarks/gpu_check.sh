#!/usr/bin/env bash
# One pass of issue 14's GPU measurements, for a rented H100/H200 with no network (about 8 minutes; MAX_SECONDS trims it).
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh      # from the repository root; OUT defaults to ./gpu_out
#   MAX_SECONDS=380 OUT=... bash benchmarks/gpu_check.sh   # skip the steps that would not end within 380 s
#
# Installs nothing. Needs python with a CUDA build of torch, and transformers for the twin comparison (without
# it the transformers rows are skipped and noted). Every step runs under `timeout`, logs to $OUT/<step>.log and
# the script carries on when one fails; $OUT/summary.txt lists each step's exit code (124 = timed out).
# Steps, most important first, with their time limits in seconds (800 in all at worst; typical runs are far
# shorter, and the last steps can be dropped if the machine's time is short):
#   env        versions, GPU, driver                                                                  30
#   smoke      --quick on cuda: every CUDA-only path (sync, memory, autocast)                          60
#   impl       BERT-base bf16, seq 512: mlmclm vs BertForMaskedLM / BertLMHeadModel -> gpu_bench.json  90
#   attention  standard, rope and stickbreaking -> gpu_attention.json                                 100
#   sweep      sequence 128..2048 at constant tokens, and model sizes, fewer steps -> gpu_sweep.json   90
#   compile    impl again under torch.compile -> gpu_bench_compile.json                               110
#   attention_rest  absolute, alibi, exposb, nope against standard -> gpu_attention_rest.json          80
#   packed     one gpu_base run per objective (packed rows, 300 steps, no probes) -> packed/ run records 240
#              (each run's metrics.tokens_per_s: real tokens/s of the ordinary training loop)
#   packed_compile  the same two runs with train --compile -> packed_compile/ (compare tokens_per_s)     300
set -u
OUT=${OUT:-./gpu_out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python}
BENCH=("$PY" -c "import sys; from mlmclm.cli import main; sys.exit(main())" bench)
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

MAX_SECONDS=${MAX_SECONDS:-0}  # > 0: skip a step whose limit would end past this many seconds from the start

step() {  # step NAME SECONDS COMMAND...
  local name=$1 seconds=$2
  shift 2
  if (( MAX_SECONDS > 0 && SECONDS + seconds > MAX_SECONDS )); then
    echo "== $name skipped: its ${seconds}s limit would pass MAX_SECONDS=$MAX_SECONDS" | tee -a "$SUMMARY"
    return
  fi
  echo "== $name (limit ${seconds}s): $*" | tee -a "$SUMMARY"
  local start=$SECONDS
  timeout --kill-after=10 "$seconds" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "   exit $rc after $((SECONDS - start))s" | tee -a "$SUMMARY"
  tail -n 40 "$OUT/$name.log"
}

step env 30 bash -c "nvidia-smi; $PY - <<'PY'
import torch
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())
if torch.cuda.is_available():
    print('device', torch.cuda.get_device_name(0), 'bf16', torch.cuda.is_bf16_supported())
try:
    import transformers
    print('transformers', transformers.__version__)
except ImportError:
    print('transformers: not installed (the twin rows will be skipped)')
PY"

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "no CUDA build of torch or no GPU: nothing more to run" | tee -a "$SUMMARY"
  exit 0
fi

step smoke 60 "${BENCH[@]}" --quick --device cuda --bf16 --scenarios impl attention --json "$OUT/gpu_smoke.json"
step impl 90 "${BENCH[@]}" --preset bert-base --device cuda --bf16 --scenarios impl \
  --steps 10 --warmup 3 --repeats 5 --json "$OUT/gpu_bench.json"
step attention 100 "${BENCH[@]}" --preset bert-base --device cuda --bf16 --scenarios attention \
  --attention rope stickbreaking --steps 5 --warmup 2 --repeats 3 --json "$OUT/gpu_attention.json"
step sweep 90 "${BENCH[@]}" --preset bert-base --device cuda --bf16 --scenarios sweep \
  --seq-lengths 128 256 512 1024 2048 --steps 3 --warmup 2 --repeats 2 --json "$OUT/gpu_sweep.json"
step compile 110 "${BENCH[@]}" --preset bert-base --device cuda --bf16 --scenarios impl --compile \
  --steps 10 --warmup 3 --repeats 3 --json "$OUT/gpu_bench_compile.json"
step attention_rest 80 "${BENCH[@]}" --preset bert-base --device cuda --bf16 --scenarios attention \
  --attention absolute alibi exposb nope --steps 5 --warmup 2 --repeats 3 --json "$OUT/gpu_attention_rest.json"
step packed 240 "$PY" -c "import sys; from mlmclm.cli import main; sys.exit(main())" train \
  --config mlmclm/configs/gpu_base.yaml --objectives mlm clm --attention standard --num-runs 1 --max-steps 300 \
  --no-probes --device cuda --output-dir "$OUT/packed" --quiet
step packed_compile 300 "$PY" -c "import sys; from mlmclm.cli import main; sys.exit(main())" train \
  --config mlmclm/configs/gpu_base.yaml --objectives mlm clm --attention standard --num-runs 1 --max-steps 300 \
  --no-probes --device cuda --compile --output-dir "$OUT/packed_compile" --quiet
echo "done; files in $OUT" | tee -a "$SUMMARY"
