#!/usr/bin/env bash
# Use the wheel in dist/ as a user who installs it would: in a new virtual environment, away
# from this checkout, print the version and licence, list the targets, and train, compile and
# evaluate the digits demo. Any missing tool or failed step fails the check.
# Usage (from `make check-wheel`): scripts/check-wheel.sh PYTHON
set -euo pipefail
python=${1:?usage: scripts/check-wheel.sh PYTHON}
repo=$(cd "$(dirname "$0")/.." && pwd)
wheels=("$repo"/dist/neurodeploy-*.whl)
if [ ${#wheels[@]} -ne 1 ] || [ ! -f "${wheels[0]}" ]; then
  echo "error: expected one wheel in dist/ (run make dist), found: ${wheels[*]}" >&2
  exit 1
fi
wheel=${wheels[0]}
version=$(basename "$wheel" | cut -d- -f2)
unset PYTHONPATH  # the installed wheel, not this checkout, must be what runs
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

start=$SECONDS
"$python" -m venv venv
# pip >= 25.1 shows the licence expression (License-Expression) in `pip show`
venv/bin/pip install -q 'pip>=25.1'
# --no-compile: byte-compiling all of torch took most of the install time (about 2 of 3 minutes);
# Python compiles what the check imports anyway
venv/bin/pip install -q --no-compile torch==2.13.0  # the local CPU build, as set-up does
venv/bin/pip install -q --no-compile "$wheel"
echo "check-wheel: clean install in $((SECONDS - start)) s"

venv/bin/python -c "import neurodeploy, sys; assert neurodeploy.__file__.startswith(sys.prefix), \
neurodeploy.__file__"
test "$(venv/bin/neurodeploy --version)" = "neurodeploy, version $version"
venv/bin/pip show neurodeploy | grep -x "License-Expression: BSD-3-Clause"
venv/bin/neurodeploy targets
venv/bin/python "$repo/examples/digits_mlp/train.py" --out model.pt
# p99.99: this checks the package, not the methods (the default, auto, calibrates for minutes)
venv/bin/neurodeploy compile model.pt --target loihi --method p99.99 --calib digits --timesteps 4 \
    -o model.nir
venv/bin/neurodeploy evaluate model.nir --dataset digits --timesteps 4
echo "check-wheel: $(basename "$wheel") works in a clean environment ($((SECONDS - start)) s)"
