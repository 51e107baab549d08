#!/usr/bin/env bash
# One-command GPU check: install the requirements (a CUDA build of torch is
# needed on the GPU machine, so torch is installed from PyPI without the
# CPU pin), then print SGD throughput at the paper's sizes.
# Usage: bash bench/gpu.sh [extra flags for python -m bench.gpu]
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --progress-bar off "torch==2.13.0" numpy scipy plotly streamlit==1.67.0 threadpoolctl
python -c "import torch; print('CUDA available:', torch.cuda.is_available())"
python -m bench.gpu "$@"
