#!/usr/bin/env bash
# Create .venv (if missing) and install the project with its test extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
# torch/torchvision pinned to the releases this project is tested with (x86_64, Python 3.11).
.venv/bin/pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/pip install --quiet -e ".[test]"
