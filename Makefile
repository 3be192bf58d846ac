# The two commands the README promises. Both set up from nothing (a new .venv).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test fuzz install clean

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install.sh
	VENV=$(VENV) EXTRAS=test ./scripts/install.sh
	touch $@

install: $(VENV)/.installed

# Main job: show the configured models, then index the built-in sample and search it
# (offline without pretrained weights: with builtin:shapes, trained in ~15 s on first use).
demo: $(VENV)/.installed
	$(VENV)/bin/spyglass models
	$(VENV)/bin/spyglass demo

# Lint first (ruff, pinned in the test extra), then the tests; they also drive the web page in
# Debian's Chromium, installed here when missing (as root).
test: $(VENV)/.installed
	$(VENV)/bin/ruff format --check --quiet spyglass tests benchmarks
	$(VENV)/bin/ruff check --quiet spyglass tests benchmarks
	./scripts/test-deps.sh
	HF_HUB_OFFLINE=1 $(PY) -m pytest

# Long fuzzing of every loader (make test runs a short pass of the same tests); a failing input
# is saved under tests/fuzz/crashes/ and replayed by every later run.
fuzz: $(VENV)/.installed
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q tests/fuzz

clean:
	rm -rf $(VENV) .pytest_cache
