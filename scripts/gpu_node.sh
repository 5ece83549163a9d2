#!/usr/bin/env bash
# The book's GPU work on a node with PyTorch and Triton but no internet and no venv (a lent GPU
# machine, a cluster node): the other packages come as wheels (`make wheelhouse`, or any folder of
# wheels), installed into a private site directory. Run from the repository root:
#
#   scripts/gpu_node.sh setup WHEELS   install WHEELS/*.whl into $SEQBOOK_SITE (default /tmp/seqbook-site)
#   scripts/gpu_node.sh test [ARGS]    pytest -m gpu, each test named with its outcome, in TEST_WORKERS (default 1)
#                                      (SEQLIB_TEST_REPORT=FILE: each failure into FILE as it happens)
#                                      xdist workers that restart after a crash (ARGS go to pytest)
#   scripts/gpu_node.sh bench          the scan, attention (with --tiles) and model benchmarks (with the Hawk and
#                                      HGRN2 profiles) into results/bench
#   scripts/gpu_node.sh grid [ARGS]    the run grid, full profile (ARGS go to python -m seqlib.book.grid)
#   scripts/gpu_node.sh round DIR [ARGS]  one training round of the grid (book profile, --train-only; ARGS go
#                                      to the grid, e.g. --workers-per-gpu 8 --deadline 300), then the records
#                                      it wrote (runs, the round record) as DIR/records.tar.gz; ROUND_TIMEOUT=s
#                                      stops the grid after s seconds and still packs what it wrote; a run or stack
#                                      that it stopped goes on from its snapshot in the next round on this disk,
#                                      which also keeps each call's records ($SEQBOOK_ROUNDS, default
#                                      ~/seqbook-rounds) and restores them first (a call replaces the tree's)
#   scripts/gpu_node.sh scaling [ARGS]  the grid's speed-up on all visible GPUs against one, in one call
#                                      (python -m seqlib.book.scaling ARGS, e.g. --only chomsky --devices 1 4
#                                      --workers-per-gpu 8 --deadline 180): the record into results/bench
#   scripts/gpu_node.sh diagnose M...  each model alone in its process under CUDA_LAUNCH_BLOCKING=1, a short run
#                                      of its book parity configuration (DIAG_TASK, DIAG_STEPS), with the autotune
#                                      cap and without: is a crash seen in a round the kernel's or the round's?
#   scripts/gpu_node.sh pack DIR       the run records (no checkpoints) and book/runs as DIR/*.tar.gz
#   scripts/gpu_node.sh corpus FILE    restore the text chapter's corpus from FILE (python -m seqlib.corpus
#                                      --pack FILE on a machine that built it: about 12 MB), checked
#
# Where the tree travels without .git, set SEQLIB_COMMIT to the commit it was copied from: every
# record and benchmark then names it. Keep the environment's NCCL settings (NVLink multicast off).
set -euo pipefail
cd "$(dirname "$0")/.."
SITE=${SEQBOOK_SITE:-/tmp/seqbook-site}
PY=${PYTHON:-python3}
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export SEQLIB_COMMIT=${SEQLIB_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}

step=${1:?usage: scripts/gpu_node.sh setup|test|bench|grid|round|scaling|diagnose|pack|corpus ...}
shift
case "$step" in
  setup)
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${1:?wheel folder}"/*.whl
    # what a training round needs; fla (ZOO=1) and papermill (not TRAIN=1) where the wheels brought them
    "$PY" -c "import importlib.util as u, torch, triton, distributed, pydantic, yaml; print('torch', torch.__version__, 'triton', triton.__version__, 'GPUs', torch.cuda.device_count(), *(f'{m}: {bool(u.find_spec(m))}' for m in ('fla', 'papermill')))"
    ;;
  test)
    # in a pytest-xdist worker (TEST_WORKERS of them): a test that kills its process with a CUDA error
    # (an illegal memory access is sticky) is reported failed and the worker restarts for the next one
    # (without pytest-xdist, in this process)
    workers=$("$PY" -c "import xdist" 2>/dev/null && echo "-n ${TEST_WORKERS:-1}" || true)
    # shellcheck disable=SC2086
    SEQLIB_AUTOTUNE_MAX=${SEQLIB_AUTOTUNE_MAX:-2} "$PY" -m pytest -m gpu -p no:cacheprovider -v -rfEs $workers "$@"
    ;;
  bench)
    "$PY" -m seqlib bench scan
    "$PY" -m seqlib bench attention --tiles
    SEQLIB_AUTOTUNE_MAX=${SEQLIB_AUTOTUNE_MAX:-4} "$PY" -m seqlib bench models train \
      --models hawk griffin transformer local_transformer hgrn2 --precompile 4 --budget "${TRAIN_BUDGET:-150}" \
      --profile hawk hgrn2
    "$PY" -m seqlib bench models decode --decode-budget "${DECODE_BUDGET:-150}"
    ;;
  grid)
    PROFILE=${PROFILE:-full} "$PY" -m seqlib.book.grid "$@"
    ;;
  round)
    out=${1:?output folder}
    shift
    mkdir -p "$out"
    # what an earlier call left on this disk (a warm machine): runs to resume, compiled kernels, GPU processes
    echo "round: $(find results/.partial -name '*.pt' 2>/dev/null | wc -l) snapshot(s) to resume (seqlib.snapshot)," \
      "Triton cache $(du -sh "${TRITON_CACHE_DIR:-$HOME/.triton/cache}" 2>/dev/null | cut -f1 || echo none)," \
      "$(nvidia-smi --query-compute-apps=pid --format=csv,noheader 2>/dev/null | wc -l) process(es) on the GPU"
    # each call's records stay on this disk, outside the tree (a call replaces the tree's tracked files,
    # the records among them, with the caller's copy): restored first, so that a chained call on a warm
    # machine goes on after them rather than training them again (seqlib.results.merge_archives)
    kept=${SEQBOOK_ROUNDS:-$HOME/seqbook-rounds}
    mkdir -p "$kept"
    if compgen -G "$kept/*.tar.gz" >/dev/null; then
      "$PY" -c "import sys; from seqlib.results import merge_archives as m; print('round: restored %d record(s) of earlier calls on this disk (%d already as good here)' % m(sorted(sys.argv[1:])))" "$kept"/*.tar.gz
    fi
    stamp=$(mktemp)
    sleep 1  # the records written from now on are newer than the stamp
    status=0
    # ROUND_TIMEOUT=s stops the grid after s seconds (jobs under way are lost) and still packs what it wrote
    # fla's autotuning compiles dozens of configurations per kernel, per process: minutes per model, more
    # than a book run trains; the cap (recorded in each run) changes the kernels' speed, not their function
    # SIGTERM at ROUND_TIMEOUT: the grid records the round and exits 124 (a KILL follows 60 s later if it hangs)
    SEQLIB_AUTOTUNE_MAX=${SEQLIB_AUTOTUNE_MAX:-4} PROFILE=${PROFILE:-book} timeout -k 60 "${ROUND_TIMEOUT:-0}" \
      "$PY" -m seqlib.book.grid --train-only "$@" || status=$?
    find results -newer "$stamp" -type f -name '*.json' -not -path 'results/scratch/*' -print0 \
      | tar -czf "$out/records.tar.gz" --null -T -
    cp "$out/records.tar.gz" "$kept/records-$(date -u +%Y%m%dT%H%M%S).tar.gz"
    echo "round: $(tar -tzf "$out/records.tar.gz" | wc -l) records in $out/records.tar.gz (grid exit status $status)"
    exit $status
    ;;
  scaling)
    "$PY" -m seqlib.book.scaling "$@"
    ;;
  diagnose)
    # into results/scratch (never packed), one seed at the first rate of the sweep, one process at a time
    for model in "${@:?models to diagnose}"; do
      for cap in 4 ""; do
        echo "== $model, autotune cap ${cap:-none}, CUDA_LAUNCH_BLOCKING=1"
        CUDA_LAUNCH_BLOCKING=1 SEQLIB_AUTOTUNE_MAX=$cap timeout "${DIAG_TIMEOUT:-300}" "$PY" -m seqlib train \
          --task "${DIAG_TASK:-parity_check}" --model "$model" --profile book --set "optim.steps=${DIAG_STEPS:-60}" \
          --set optim.warmup_steps=10 --set "optim.lr_sweep=[1.0e-4]" --set "optim.seeds=[0]" \
          --set "optim.sweep_seeds=null" \
          --results-dir results/scratch/diagnose --force --no-progress 2>&1 | tail -n 4 || true
      done
    done
    ;;
  corpus)
    "$PY" -m seqlib.corpus --unpack "${1:?packed corpus (.tar.xz)}"
    ;;
  pack)
    out=${1:?output folder}
    mkdir -p "$out"
    find results -name '*.json' -not -path 'results/scratch/*' -print0 | tar -czf "$out/results.tar.gz" --null -T -
    tar -czf "$out/book-runs.tar.gz" book/runs
    ls -la "$out"
    ;;
  *)
    echo "unknown step '$step': use setup, test, bench, grid, round, diagnose, pack or corpus" >&2
    exit 2
    ;;
esac
