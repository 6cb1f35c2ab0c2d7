# Entry points. `make test` is the one command that installs everything and
# runs the whole test suite; .ci/run calls exactly that.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: test setup lint pytest clean

test: setup lint pytest

setup:
	bash scripts/setup.sh

lint:
	$(VENV)/bin/ruff check chaosray tests benchmarks
	$(VENV)/bin/mypy

pytest:
	$(PY) -m pytest -ra $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
