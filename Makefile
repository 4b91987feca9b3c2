# The two commands of README.md: `make demo` and `make test`. Everything they need is installed
# here, from PyPI, npm and Debian's packages; nothing is done by hand.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PG_URL ?= $(CIVICPULSE_TEST_DATABASE_URL)

.PHONY: bench demo serve test test-sqlite test-postgres lint format install install-test assets chromium clean

demo: install assets            ## set up, build the demo city, serve on http://127.0.0.1:8000
	$(BIN)/civicpulse demo

serve: install assets
	$(BIN)/civicpulse serve

test: install-test assets chromium   ## set up and run the whole suite
	$(BIN)/ruff check src tests benchmarks
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$(PG_URL)" ]; then $(MAKE) --no-print-directory test-postgres; \
	 else echo "PostgreSQL pass skipped: CIVICPULSE_TEST_DATABASE_URL is not set"; fi

test-sqlite:
	$(BIN)/pytest

# The store's tests again on PostgreSQL: the same migrations and queries on the production store.
test-postgres:
	CIVICPULSE_DATABASE_URL="$(PG_URL)" $(BIN)/pytest -m "not e2e and not spark" \
	  --ignore=tests/lake --ignore=tests/demo/test_generator.py -p no:cacheprovider

$(VENV)/.installed: pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

install: $(VENV)/.installed

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test,spark]'
	touch $@

install-test: $(VENV)/.installed-test

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

src/civicpulse/web/static/vendor/echarts.min.js: node_modules/.package-lock.json scripts/copy-assets.mjs
	npm run build

assets: src/civicpulse/web/static/vendor/echarts.min.js

# Browser tests drive Debian's chromium (with a CJK font, so Chinese pages render); Playwright's
# own browser download is never used.
chromium:
	@{ command -v chromium >/dev/null && [ -d /usr/share/fonts/truetype/wqy ]; } || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium fonts-wqy-microhei; }

# Benchmarks write their sections of docs/benchmarks.md; the Open311 one drives wrk (Debian).
bench: install-test assets
	@command -v wrk >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk; }
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.case_import
	$(BIN)/python -m benchmarks.routing
	$(BIN)/python -m benchmarks.open311
	$(BIN)/python -m benchmarks.identity

lint:
	$(BIN)/ruff check src tests benchmarks

format:
	$(BIN)/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) node_modules src/civicpulse/web/static/vendor build *.egg-info
