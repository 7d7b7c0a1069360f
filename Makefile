# Two entry points (see README): `make run` (set-up + demo) and `make test` (set-up + tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
ND := $(VENV)/bin/neurodeploy
STAMP := $(VENV)/.setup-done
DEMO := examples/digits_mlp
RESNET := examples/fashion_resnet/model.pt
CNN := examples/fashion_cnn/model.pt
VGG := examples/fashion_vgg/model.pt

.PHONY: setup run test test-slow dist check-wheel bench lint clean

setup: $(STAMP)

# torch first, from the local CPU build (a plain `torch` would pull a multi-GB CUDA build);
# lava-nc/lava-dl declare Python <3.11, so they go in without dependency resolution and
# their real dependencies (with their pins) come from the [lava] extra.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e '.[dev,lava,interop,ray]'
	$(VENV)/bin/pip install -q --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0
	bash scripts/install-fashion-mnist.sh
	touch $(STAMP)

run: setup
	$(PY) $(DEMO)/train.py --out $(DEMO)/model.pt
	$(ND) compile $(DEMO)/model.pt --target loihi --calib digits --timesteps 4 -o $(DEMO)/model.nir
	$(ND) evaluate $(DEMO)/model.nir --dataset digits --timesteps 1,2,4,8 --ann $(DEMO)/model.pt
	$(ND) verify $(DEMO)/model.nir --dataset digits --samples 4

# pytest exits 5 when it collects nothing; make would hide that code, so say it here.
# Then the wheel is built and used in a clean environment (check-wheel): that takes minutes
# (a new venv with torch), too long for the pytest run, so it runs here, after the tests.
test: setup
	$(PY) -m pytest -q; code=$$?; \
	if [ $$code -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; \
	exit $$code
	$(MAKE) --no-print-directory check-wheel

test-slow: setup
	$(PY) -m pytest -q -m slow

# The sdist, then the wheel built from it (so a file missing from the sdist fails here).
dist: setup
	rm -rf dist
	$(PY) -m build -q --outdir dist

check-wheel: dist
	bash scripts/check-wheel.sh $(PYTHON)

bench: setup $(RESNET) $(CNN) $(VGG)
	$(PY) benchmarks/accuracy.py
	$(PY) benchmarks/sim_speed.py
	$(PY) benchmarks/report.py
	$(PY) benchmarks/interop.py
	$(PY) benchmarks/resnet.py
	$(PY) benchmarks/methods_ops.py
	$(PY) benchmarks/accuracy.py --methods p99.99,calibrate,ftbc,adafire,adafire+iat \
		--target loihi2 --timesteps 1,2,4,8 --granularities channel \
		--result accuracy_training_free_fashion-mnist_loihi2 \
		--plot-ops benchmarks/results/accuracy_training_free_fashion-mnist_loihi2.png
	$(PY) benchmarks/iat_samples.py
	$(PY) benchmarks/seeds.py
	$(PY) benchmarks/layer_quantization.py
	$(PY) benchmarks/memory_bound.py
	$(PY) benchmarks/ray_verify.py
	$(PY) benchmarks/accuracy.py --model $(VGG) --methods p99.99,calibrate,adafire,auto \
		--target loihi2 --timesteps 1,2,4,8 --granularities channel --limit 2000 \
		--result accuracy_fashion_vgg_loihi2
	$(PY) benchmarks/lava_scale.py
	for model in fashion_cnn fashion_resnet; do \
		$(PY) benchmarks/accuracy.py --model examples/$$model/model.pt \
			--methods p99.99,calibrate,ftbc,adafire,auto --target loihi2 --timesteps 1,2,4,8 \
			--granularities channel --result accuracy_default_$${model}_loihi2 || exit 1; \
	done
	$(PY) benchmarks/compile_speed.py --models fashion_cnn --methods p99.99,calibrate,ftbc,adafire,auto
	$(PY) benchmarks/compile_speed.py --models vgg11,resnet18 --result compile_speed_shapes
	$(PY) benchmarks/finetune_accuracy.py --models $(CNN) --epochs 3 --result finetune_accuracy_fashion_cnn_loihi2
	$(PY) benchmarks/finetune_accuracy.py --models $(RESNET) --epochs 3 --result finetune_accuracy_fashion_resnet_loihi2
	$(PY) benchmarks/finetune_speed.py

$(RESNET): | setup
	$(PY) examples/fashion_resnet/train.py --out $@

$(CNN): | setup
	$(PY) examples/fashion_cnn/train.py --out $@

$(VGG): | setup
	$(PY) examples/fashion_vgg/train.py --out $@

lint: setup
	$(VENV)/bin/ruff check neurodeploy tests benchmarks examples

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
