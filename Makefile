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
STAMP_BROWSER := $(VENV)/.installed-browser
CHROMIUM ?= /usr/bin/chromium

.PHONY: demo test test-runs test-browser check-chromium screenshots lint typecheck unit floors \
	pythons pythons-runs bench soak clean

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

$(STAMP_BROWSER): pyproject.toml | $(STAMP_DEV)
	$(BIN)/python -m pip install --quiet -e '.[browser]'
	@touch $@

demo: $(STAMP_RUN)
	$(BIN)/routee-viber demo

lint: $(STAMP_DEV)
	$(BIN)/ruff check routee_viber_async tests tests_browser benchmarks examples
	$(BIN)/ruff format --check routee_viber_async tests tests_browser benchmarks examples

typecheck: $(STAMP_DEV)
	$(BIN)/mypy --strict routee_viber_async

# -- the suite ---------------------------------------------------------------------------------
# Each run of the suite spreads over WORKERS processes (pytest-xdist; WORKERS=0 runs it in one):
# the tests bind port 0, keep their files under tmp_path and wait on conditions, not on time.
WORKERS ?= 2
PYTEST_ARGS ?= -q -p no:cacheprovider -n $(WORKERS)
PYTHONS := 3.11 3.12 3.13
RUNTIME_DEPS = $(shell sed -n '/^[A-Za-z]/s/==.*//p' floors.txt)

# $(call find_python,3.12): the command of that exact version, found on PATH or else under pyenv
# (which keeps versions off PATH unless selected), or nothing (probed silently, as PYTHON is).
find_python = for p in "$$(command -v python$(1))" \
	"$$(PYENV_VERSION=$$(pyenv latest $(1) 2>/dev/null) pyenv which python$(1) 2>/dev/null)"; do \
	test -n "$$p" && "$$p" -c 'import sys; sys.exit("%d.%d" % sys.version_info[:2] != sys.argv[1])' \
	"$(1)" >/dev/null 2>&1 && { echo "$$p"; break; }; done

# .venv's Python version (of the Python that makes .venv, before there is one); the versions of
# PYTHONS found, .venv's own always among them, and those not found.
OWN = $(shell $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) -c \
	'import sys; print("%d.%d" % sys.version_info[:2])')
FOUND = $(foreach v,$(sort $(PYTHONS) $(OWN)),$(if \
	$(filter $(v),$(OWN))$(shell $(call find_python,$(v))),$(v)))
MISSING = $(filter-out $(FOUND),$(PYTHONS))
# The venv of a version: .venv for .venv's own, .venv-3.12 (built here) for another.
venv_of = $(if $(filter $(1),$(OWN)),$(VENV),.venv-$(1))

# The runs of `make test`: the oldest Python found runs the suite at the floors (floors.txt, the
# lowest versions pyproject.toml allows, installed into .floors-3.11 ahead of the venv's), every
# other one with the dev dependencies (the newest versions, as users get them); .venv's Python,
# if it is the only one found, runs both. Why not both on every Python: four runs do not fit
# make test's 15 minutes on 2 cores, and the floors belong on the oldest Python (orjson 3.9.0
# has no wheel for 3.12 or later). Each run prints its Python and dependency versions first.
RUNS = $(if $(filter-out $(OWN),$(FOUND)),$(firstword $(FOUND))-floors \
	$(addsuffix -dev,$(wordlist 2,$(words $(FOUND)),$(FOUND))),$(OWN)-dev $(OWN)-floors)

describe_run = import sys, importlib.metadata as m; print("== the suite, run %s: Python %s; %s" \
	% (sys.argv[1], sys.version.split()[0], ", ".join(d + " " + m.version(d) for d in sys.argv[2:])))

.SECONDEXPANSION:
.PRECIOUS: .venv-%/.installed-dev .floors-%/.installed  # stamps, not intermediate files

# suite-3.12-dev: the suite on Python 3.12 with the dev dependencies.
suite-%-dev: $$(call venv_of,$$*)/.installed-dev
	@$(call venv_of,$*)/bin/python -c '$(describe_run)' $*-dev $(RUNTIME_DEPS)
	$(call venv_of,$*)/bin/pytest $(PYTEST_ARGS)

# suite-3.11-floors: the suite on Python 3.11 with the runtime dependencies at their floors.
suite-%-floors: .floors-$$*/.installed
	@PYTHONPATH=.floors-$* $(call venv_of,$*)/bin/python -c '$(describe_run)' $*-floors \
		$(RUNTIME_DEPS)
	PYTHONPATH=.floors-$* $(call venv_of,$*)/bin/pytest $(PYTEST_ARGS)

.floors-%/.installed: floors.txt | $$(call venv_of,$$*)/.installed-dev
	rm -rf .floors-$*
	$(call venv_of,$*)/bin/python -m pip install --quiet --no-deps --target .floors-$* \
		-r floors.txt
	@touch $@

.venv-%/.installed-dev: pyproject.toml
	@py="$$($(call find_python,$*))"; test -n "$$py" || { echo "Python $* not found" >&2; exit 2; }; \
	echo "$$py -m venv .venv-$*"; "$$py" -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --upgrade pip
	.venv-$*/bin/python -m pip install --quiet -e '.[dev]'
	@touch $@

# A version of PYTHONS found nowhere is named in the output: it is never skipped silently.
name_missing = $(foreach v,$(MISSING),echo "Python $(v): not found on PATH or under pyenv; the \
	suite does NOT run on it";)

unit: suite-$$(OWN)-dev

floors: suite-$$(OWN)-floors

# The suite with the dev dependencies on every Python found. Probing pyenv takes a moment, so
# FOUND is worked out once and handed to the make that runs the suites (as test does).
pythons:
	@$(MAKE) --no-print-directory FOUND="$(FOUND)" pythons-runs

pythons-runs:
	@$(name_missing) $(MAKE) --no-print-directory $(addprefix suite-,$(addsuffix -dev,$(FOUND))) \
	&& echo "make pythons: the suite passed on $(FOUND)$(if $(MISSING),; not found: $(MISSING))"

test: lint typecheck
	@$(MAKE) --no-print-directory FOUND="$(FOUND)" test-runs

test-runs:
	@$(name_missing) $(MAKE) --no-print-directory $(addprefix suite-,$(RUNS)) \
	&& echo "make test: the suite passed in the runs $(RUNS)$(if $(MISSING),; not found: $(MISSING))"

# The web inbox in a real browser: Debian's Chromium (apt-get install -y chromium
# chromium-driver) driven by Playwright, whose own browser download is never used. `make test`
# does not need them: its pytest run collects tests/ only.
check-chromium:
	@test -x "$(CHROMIUM)" || { echo "Chromium is missing ($(CHROMIUM)): apt-get install -y chromium chromium-driver" >&2; exit 2; }

test-browser: check-chromium $(STAMP_BROWSER)
	CHROMIUM=$(CHROMIUM) $(BIN)/pytest -q -p no:cacheprovider tests_browser

# The README's pictures of the inbox, taken by the browser tests.
screenshots: check-chromium $(STAMP_BROWSER)
	CHROMIUM=$(CHROMIUM) ROUTEE_SCREENSHOTS_DIR=docs $(BIN)/pytest -q -p no:cacheprovider tests_browser

bench: $(STAMP_DEV)
	$(BIN)/python -m benchmarks

soak: $(STAMP_DEV)
	$(BIN)/python -m benchmarks.soak

clean:
	rm -rf $(VENV) .venv-3.* .floors .floors-3.* .mypy_cache .pytest_cache .ruff_cache build dist *.egg-info
