# The two commands the README promises. Both set up from nothing (a new .venv).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test install clean

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install.sh
	VENV=$(VENV) EXTRAS=test ./scripts/install.sh
	touch $@

install: $(VENV)/.installed

# Main job: show the configured models, then embed texts and a real photo with the
# model that works offline (builtin:shapes, trained in ~15 s on first use).
demo: $(VENV)/.installed
	$(VENV)/bin/spyglass models
	$(VENV)/bin/spyglass --model builtin:shapes encode \
		-t "a red circle" -t "a blue square" -t "a photo of a cat" \
		$(if $(wildcard ../shared/data/formats/cat.jpg),-i ../shared/data/formats/cat.jpg)

test: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache
