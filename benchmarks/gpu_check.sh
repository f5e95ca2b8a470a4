#!/usr/bin/env bash
# GPU check: every study's smoke preset on cuda and the throughput benchmarks, one JSON of figures.
# Usage: bash benchmarks/gpu_check.sh [--out FILE]   (within 8 minutes on one GPU; needs CUDA)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: CUDA is not available on this machine (torch.cuda.is_available() is False); run it where an NVIDIA GPU and a CUDA build of torch are installed" >&2
  exit 2
fi
exec timeout 480 "$PY" benchmarks/gpu_check.py --device cuda "$@"
