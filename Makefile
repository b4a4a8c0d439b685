# The README's two set-up commands: `make test` and `make demo`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch/torchvision first, pinned to the releases that lie on this machine's disk,
# so the project's range never pulls a different (multi-GB) build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q tests

demo: $(STAMP)
	$(BIN)/vad demo

# re-runs the benches and rewrites docs/benchmarks.md (the quality bench alone takes tens of minutes)
bench: $(STAMP)
	$(BIN)/python -m bench.publish quality extract motion_cost fusion_scaling hop_attention live scale

clean:
	rm -rf $(VENV) build *.egg-info
