#!/usr/bin/env bash
# Set up a fresh machine for contrastive: the Debian Fashion-MNIST package (real data for the
# quickstart and tests, no download at run time), a virtualenv in .venv, and the project with its
# dev tools installed editable. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

FASHION_MNIST=/usr/share/datasets/fashion-mnist
if [ ! -d "$FASHION_MNIST" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's dataset-fashion-mnist into $FASHION_MNIST"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "setup: $FASHION_MNIST is missing; install it with: sudo apt-get install dataset-fashion-mnist" >&2
    echo "setup: (or point the recipe's [data] root at a folder with the Fashion-MNIST idx files)" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
# constraints.txt pins torch and torchvision to the versions the project is tested with (2.14.1 / 0.29.1);
# the package's own metadata asks only for minimum versions.
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
echo "setup: done ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
