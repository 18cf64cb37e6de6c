#!/usr/bin/env bash
# Create .venv (if missing) and install the project with its test and documentation extras. Idempotent.
# Prints one line per stage with the seconds spent so far; pip prints its own progress.
set -euo pipefail
cd "$(dirname "$0")"
stage() { printf '\n[setup.sh %4ds] %s\n' "$SECONDS" "$*"; }
quiet=()
if [ -x .venv/bin/python ]; then
  stage "using the existing .venv (delete it for a fresh install); checking its packages quietly"
  quiet=(--quiet)
else
  stage "creating .venv with $(python3 --version)"
  python3 -m venv .venv
  stage "upgrading pip"
  .venv/bin/pip install "${quiet[@]}" --upgrade pip
fi
# torch/torchvision pinned to the releases this project is tested with (x86_64, Python 3.11). PyPI's Linux wheels
# bring the CUDA libraries even on a machine without a GPU (most of .venv's size); README says how to use CPU wheels.
stage "installing torch==2.14.1 and torchvision==0.29.1"
.venv/bin/pip install "${quiet[@]}" "torch==2.14.1" "torchvision==0.29.1"
stage "installing the project with its test and docs extras: pip install -e \".[test,docs]\""
.venv/bin/pip install "${quiet[@]}" -e ".[test,docs]"
stage "done: .venv holds $(du -sh .venv | cut -f1)"
