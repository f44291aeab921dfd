# meet: `make run` starts everything, `make test` runs the whole suite. Both set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint format test-services bench-sfu bench-join netlab clean

run: $(VENV)/.runtime-installed
	$(BIN)/python -m meet.launcher

test: lint
	@bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest

# The production configuration: PostgreSQL + the system Redis (as CI runs it).
test-services: $(VENV)/.dev-installed
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff, then mypy with django-stubs over the product code ([tool.mypy] in pyproject.toml).
lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench-sfu: $(VENV)/.dev-installed
	$(BIN)/python bench/sfu.py

bench-join: $(VENV)/.dev-installed
	@bash scripts/ensure-chromium.sh
	$(BIN)/python bench/join.py

# The network lab (docs/netlab.md): one scenario with the feature on and off, beside the
# unshaped call; as root (namespaces, tc). `make netlab SCENARIO=step-down NETLAB_ARGS=...`
SCENARIO ?= one-slow-viewer
netlab: $(VENV)/.dev-installed
	@bash scripts/ensure-chromium.sh
	$(BIN)/python bench/netlab.py --scenario $(SCENARIO) $(NETLAB_ARGS)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps: pip runs again only when a requirements file changed.
$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $@

clean:
	rm -rf $(VENV) var
