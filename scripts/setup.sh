#!/usr/bin/env bash
# Creates .venv and installs marlo with everything it needs, SUMO included (from wheels).
# torch: a CUDA build where a GPU is visible, else torch==$MARLO_CPU_TORCH (the CPU wheel this
# machine keeps on disk). An installed torch is left alone, so a CUDA build is never replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --quiet --disable-pip-version-check)
"${PIP[@]}" install --upgrade pip
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "${PIP[@]}" install "torch>=2.4"
  else
    "${PIP[@]}" install "torch==${MARLO_CPU_TORCH:-2.13.0}"
  fi
fi
"${PIP[@]}" install -e ".[test]"
"$VENV/bin/python" -m pip check
