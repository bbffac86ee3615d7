# usmr-tf: two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed-stamp
# `make demo` runs on the bundled examples/sample_data; `make demo SHARED=../shared/data` on the full data.
SHARED ?=

.PHONY: venv test test-slow ci demo bench bench-peer clean help tfjs-env

help:
	@echo "make demo   - install into $(VENV) (once) and run the demo on the bundled sample data"
	@echo "              (make demo SHARED=../shared/data: on the full public data)"
	@echo "make test   - install into $(VENV) (once) and run the test suite"
	@echo "make test-slow - the slow tests (resume after kill -9, dead worker, install, bare-clone demo)"
	@echo "make ci     - both, as CI (.ci/run) does"
	@echo "make bench  - run the benchmarks"
	@echo "make bench-peer - the peer's CycleGAN (PyTorch, own venv) on this CPU, for the ratio"

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[test,serving,convert,browser]"
	touch $(STAMP)

venv: $(STAMP)

# extra pytest options, e.g. make test PYTEST_ARGS="--durations=20 -x"
PYTEST_ARGS ?=
test: $(STAMP)
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

# the tests marked slow (CI runs them after `make test`: .ci/run, docs/testing.md)
test-slow: $(STAMP)
	$(PY) -m pytest -q -ra -m slow $(PYTEST_ARGS)

# what CI runs: both sets
ci: test test-slow

demo: $(STAMP)
	$(PY) examples/demo.py $(if $(SHARED),--data $(SHARED)) --out demo_output

# ~15 min on an idle 2-core machine; writes benchmarks/results.json and docs/figures/performance.png
PRESET ?= fetal_hc18_v2
bench: $(STAMP)
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bf16_quality.py
	$(PY) benchmarks/bench_infer.py --runs 10 --model saved_models/$(PRESET)
	$(PY) benchmarks/plot_results.py

# The peer (junyanz CycleGAN networks) in its own environment: PyTorch for the CPU, no usmr_tf.
PEER_VENV ?= .venv-peer
$(PEER_VENV)/.installed-stamp:
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install -q --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple torch
	touch $@
bench-peer: $(PEER_VENV)/.installed-stamp
	$(PEER_VENV)/bin/python benchmarks/peer_cyclegan_torch.py

# Separate environment for the TF.js converter (tensorflowjs pins TF 2.19): see examples/tfjs_env.sh
tfjs-env: $(STAMP)
	VENV=$(VENV) examples/tfjs_env.sh

clean:
	rm -rf $(VENV) .venv-tfjs $(PEER_VENV) demo_output build *.egg-info
