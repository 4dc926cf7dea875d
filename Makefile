# Every target works on a fresh machine with only Python 3.11+. The probe is silent: a pyenv
# shim of a Python that is not installed passes `command -v` and then complains on stderr.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 \
	&& $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
FLOORS := .floors
STAMP_FLOORS := $(FLOORS)/.installed

.PHONY: demo test lint typecheck unit floors bench soak clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[cli]'
	@touch $@

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(STAMP_RUN)

demo: $(STAMP_RUN)
	$(BIN)/routee-viber demo

lint: $(STAMP_DEV)
	$(BIN)/ruff check routee_viber_async tests benchmarks examples
	$(BIN)/ruff format --check routee_viber_async tests benchmarks examples

typecheck: $(STAMP_DEV)
	$(BIN)/mypy --strict routee_viber_async

unit: $(STAMP_DEV)
	$(BIN)/pytest -q

# The suite again, with the runtime dependencies at their floors (floors.txt) ahead of .venv's.
$(STAMP_FLOORS): floors.txt | $(STAMP_DEV)
	rm -rf $(FLOORS)
	$(BIN)/python -m pip install --quiet --no-deps --target $(FLOORS) -r floors.txt
	@touch $@

floors: $(STAMP_FLOORS)
	PYTHONPATH=$(FLOORS) $(BIN)/pytest -q -p no:cacheprovider

test: lint typecheck unit floors

bench: $(STAMP_DEV)
	$(BIN)/python -m benchmarks

soak: $(STAMP_DEV)
	$(BIN)/python -m benchmarks.soak

clean:
	rm -rf $(VENV) $(FLOORS) .mypy_cache .pytest_cache .ruff_cache build dist *.egg-info
