# Python 3.11+ and make are all a machine needs; everything else goes into .venv.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced

.PHONY: demo test lint unit integration e2e bench bench-lilim serve clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --python $(PYTHON)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/doorstep demo

serve: $(STAMP)
	$(VENV)/bin/doorstep serve all

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Two workers: the suite is mostly CPU (solvers, migrations, app start-ups) on a two-CPU machine.
TEST_WORKERS ?= 2

test: lint
	$(VENV)/bin/pytest -q -ra -n $(TEST_WORKERS) $(PYTEST_ARGS)

unit: $(STAMP)
	$(VENV)/bin/pytest -q -m "not integration and not e2e"

bench: $(STAMP)
	$(VENV)/bin/python bench/intake.py --write-docs
	$(VENV)/bin/python bench/csv_import.py --write-docs
	$(VENV)/bin/python bench/gateway.py --write-docs
	$(VENV)/bin/python bench/webhooks.py --write-docs
	$(VENV)/bin/python bench/dispatch_scale.py --write-docs

# Li & Lim routing benchmark: every 100- and 200-task instance, PyVRP then the OR-Tools peer, about 80 minutes.
bench-lilim: $(STAMP)
	$(VENV)/bin/python bench/lilim.py --write-docs

clean:
	rm -rf $(VENV) .tools .doorstep .pytest_cache .mypy_cache .ruff_cache
