# The README's two commands: `make quickstart` (main job) and `make test`.
PY ?= python3.11
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv quickstart test bench clean

$(VPY):
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip

# torch first (the CPU wheel on disk), then the project under the same constraints.
$(STAMP): $(VPY) pyproject.toml constraints.txt
	$(VPY) -m pip install -q torch==2.13.0
	$(VPY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/bluerec quickstart --out runs/quickstart

test: $(STAMP)
	$(VPY) -m pytest -q

bench: $(STAMP)
	$(VPY) bench/baselines.py

clean:
	rm -rf $(VENV) runs
