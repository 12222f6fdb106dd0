# orgtwin — every target creates the environment it needs from pyproject.toml.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SCENARIO ?= scenarios/cab_policy.yaml
SEEDS  ?= 8
DAYS   ?= 90
PYTEST_ARGS ?=
APP_PORT ?= 8501
# Open a browser tab for `make app` only where there is a desktop to open it on.
APP_HEADLESS ?= $(if $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(shell uname -s))),false,true)

.PHONY: install app browser run test test-fast golden docs bench lint format clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,app,sweep,viz]'
	@touch $(STAMP)

install: $(STAMP)

# The dashboard on http://127.0.0.1:$(APP_PORT) (local only; Ctrl-C stops it).
app: $(STAMP)
	@echo "orgtwin dashboard: http://127.0.0.1:$(APP_PORT)  (Ctrl-C to stop)"
	$(VENV)/bin/streamlit run app.py --server.address 127.0.0.1 --server.port $(APP_PORT) \
		--server.headless $(APP_HEADLESS)

# Debian's chromium for the browser test (tests/dashboard/test_app_browser.py), with apt where
# there is apt; never `playwright install`. Elsewhere the browser test skips and says why.
browser:
	@test -x /usr/bin/chromium || ! command -v apt-get >/dev/null || { \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium; }

run: $(STAMP)
	$(VENV)/bin/orgtwin run $(SCENARIO) --days $(DAYS) --seeds $(SEEDS)

test: $(STAMP) browser
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m 'not slow' $(PYTEST_ARGS)

# Rewrite tests/golden/small_summary.json after a change of behaviour you mean to make.
golden: $(STAMP)
	$(PY) tests/golden/regenerate.py

# Rewrite the generated pages of docs/ (the scenario format and the telemetry reference).
docs: $(STAMP)
	$(PY) docs/regenerate.py

bench: $(STAMP)
	$(PY) benchmarks/bench_core.py
	$(PY) benchmarks/bench_sweep.py
	$(PY) benchmarks/bench_app.py
	$(PY) benchmarks/bench_learn.py
	$(PY) benchmarks/bench_fidelity.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
