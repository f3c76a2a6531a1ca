#!/usr/bin/env bash
# Fetch the wheels that benchmarks/gpu_check.py needs on a GPU machine without
# a registry (IPython and its dependencies, for Python 3.12 on x86-64) into
# .whl/ (git-ignored). Carry .whl with the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
mkdir -p .whl
for pkg in ipython==9.18.1 ipython-pygments-lexers traitlets decorator jedi parso \
           pexpect ptyprocess prompt-toolkit wcwidth stack-data executing asttokens \
           pure-eval matplotlib-inline; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux2014_x86_64 --platform any \
    -d .whl "$pkg"
done
ls .whl
