#!/usr/bin/env bash
# Set up (if needed) and run the quickstart recipe: pretrain a small encoder on Fashion-MNIST on the
# CPU, then evaluate it with kNN and linear evaluation against its random initialisation.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/contrastive run recipes/quickstart.toml "$@"
