#!/usr/bin/env bash
# Fashion-MNIST comes from the Debian package dataset-fashion-mnist (no download at run time).
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/t10k-images-idx3-ubyte.gz" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  apt-get update -q && apt-get install -y -q dataset-fashion-mnist
elif command -v sudo >/dev/null; then
  sudo apt-get update -q && sudo apt-get install -y -q dataset-fashion-mnist
else
  echo "error: Fashion-MNIST missing: install the Debian package dataset-fashion-mnist as root" >&2
  exit 1
fi
