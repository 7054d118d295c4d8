# petition-delivery: `make demo` and `make test` set up everything they need themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup system demo test test-fast lint bench clean translations

NODE_READERS := tests/support/node

setup: system $(STAMP) $(NODE_READERS)/node_modules/.installed

system:
	@scripts/setup-system.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

# pdf.js, one of the readers the tests read the dossiers' text with
$(NODE_READERS)/node_modules/.installed: $(NODE_READERS)/package.json $(NODE_READERS)/package-lock.json
	cd $(NODE_READERS) && npm ci --omit=optional --no-audit --no-fund --silent
	@touch $@

demo: setup
	$(BIN)/petition-delivery demo

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/translations.py --check

# Extract the fixed texts (templates/locale/*.pot), update each language's catalog (.po) and
# compile it (.mo); prints every message still to translate.
translations: setup
	$(BIN)/python scripts/translations.py

bench: setup
	$(BIN)/python bench/dossier.py --signers 80000
	$(BIN)/python bench/delivery.py --signers 80000

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
