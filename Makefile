# The two commands of the README: `make run` and `make test`. Both create the virtual environment
# and install what they need on first use (and again whenever pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[desktop,test,package]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/ollacache tray

test: $(VENV)/.installed
	$(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder

bench: $(VENV)/.installed
	$(BIN)/python bench/hit_latency.py
	$(BIN)/python bench/hit_throughput.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/miss_overhead.py
	$(BIN)/python bench/miss_floor.py
	$(BIN)/python bench/upstream_clients.py
	$(BIN)/python bench/coalesce.py
	$(BIN)/python bench/body_memory.py
	$(BIN)/python bench/redis_hit.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) build dist *.egg-info
