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
FLOORS := .floors
STAMP_FLOORS := $(FLOORS)/.installed

.PHONY: demo test test-browser check-chromium screenshots lint typecheck unit floors pythons bench soak clean

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

unit: $(STAMP_DEV)
	$(BIN)/pytest -q

# The suite again, with the runtime dependencies at their floors (floors.txt) ahead of .venv's.
$(STAMP_FLOORS): floors.txt | $(STAMP_DEV)
	rm -rf $(FLOORS)
	$(BIN)/python -m pip install --quiet --no-deps --target $(FLOORS) -r floors.txt
	@touch $@

floors: $(STAMP_FLOORS)
	PYTHONPATH=$(FLOORS) $(BIN)/pytest -q -p no:cacheprovider

# The suite on every other Python from 3.11 to 3.13, each in a venv of its own (.venv-3.12, ...),
# found on PATH or else under pyenv (which keeps versions off PATH unless selected). A version
# found nowhere is named in the output: it is never skipped silently. One process each:
# PYTEST_OTHER="-q -n 2" (pytest-xdist) is faster, but timing-dependent tests still fail under
# it (see the README's Development section).
OTHER_PYTHONS := 3.11 3.12 3.13
PYTEST_OTHER ?= -q -p no:cacheprovider

# $(call find_python,3.12): the command of that exact version, or nothing (probed silently, as
# PYTHON above is).
find_python = for p in "$$(command -v python$(1))" \
	"$$(PYENV_VERSION=$$(pyenv latest $(1) 2>/dev/null) pyenv which python$(1) 2>/dev/null)"; do \
	test -n "$$p" && "$$p" -c 'import sys; sys.exit("%d.%d" % sys.version_info[:2] != sys.argv[1])' \
	"$(1)" >/dev/null 2>&1 && { echo "$$p"; break; }; done

.venv-%/.installed-dev: pyproject.toml
	@py="$$($(call find_python,$*))"; test -n "$$py" || { echo "Python $* not found" >&2; exit 2; }; \
	echo "$$py -m venv .venv-$*"; "$$py" -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --upgrade pip
	.venv-$*/bin/python -m pip install --quiet -e '.[dev]'
	@touch $@

pythons: $(STAMP_DEV)
	@own="$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"; \
	ran="$$own"; missing=""; \
	for v in $(OTHER_PYTHONS); do \
		test "$$v" = "$$own" && continue; \
		if test -z "$$($(call find_python,$$v))"; then \
			echo "Python $$v: not found on PATH or under pyenv; the suite did NOT run on it"; \
			missing="$$missing $$v"; continue; \
		fi; \
		$(MAKE) --no-print-directory .venv-$$v/.installed-dev || exit 1; \
		echo ".venv-$$v/bin/pytest $(PYTEST_OTHER)"; \
		.venv-$$v/bin/pytest $(PYTEST_OTHER) || exit 1; \
		ran="$$ran $$v"; \
	done; \
	echo "The suite ran on Python $$ran$${missing:+; not on$$missing (not found)}"

test: lint typecheck unit floors

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
	rm -rf $(VENV) .venv-3.* $(FLOORS) .mypy_cache .pytest_cache .ruff_cache build dist *.egg-info
