# knexwrap: every target works from a fresh clone; the first run installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KNEXWRAP := $(VENV)/bin/knexwrap
PROJECT := fixtures/project
JUDGES := fixtures/judges
TOOLS := fixtures/tools
DEMO_DIR := .demo

.PHONY: help install node judges demo test lint bench readme dist clean pre-upgrade post-upgrade downgrade

help:
	@echo "make demo    run knexwrap on the fixture project with SQLite (no server needed)"
	@echo "make dist    build the wheel and the sdist into dist/ (python -m build)"
	@echo "make test    lint, type-check and run the whole test suite (needs PostgreSQL, see README)"
	@echo "make bench   compare knexwrap with the raw Knex CLI"
	@echo "upgrade day, for the Backstage project BACKSTAGE=<dir> (default: the current folder):"
	@echo "make pre-upgrade            snapshot every plugin database and archive the migration files"
	@echo "make post-upgrade           archive the new files, then status --check"
	@echo "make downgrade TO=<target>  plan, then downgrade to an older install folder or a snapshot file"

install: $(VENV)/.installed
node: $(PROJECT)/node_modules/.installed $(TOOLS)/node_modules/.installed
# Backstage's config-loader and pg-connection-string, pinned: only the differential tests run them.
judges: $(JUDGES)/node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@# PYTHONDONTWRITEBYTECODE may be set: compile once so every start reads bytecode.
	$(PY) -m compileall -q $(VENV)/lib knexwrap >/dev/null
	touch $@

$(PROJECT)/node_modules/.installed: $(PROJECT)/package.json $(PROJECT)/package-lock.json
	cd $(PROJECT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(JUDGES)/node_modules/.installed: $(JUDGES)/package.json $(JUDGES)/package-lock.json
	cd $(JUDGES) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# yarn 1 and yarn 4, for the tests that make repositories with a real `yarn install`.
$(TOOLS)/node_modules/.installed: $(TOOLS)/package.json $(TOOLS)/package-lock.json
	cd $(TOOLS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

DEMO_ARGS = --client better-sqlite3 --sqlite-dir ../../$(DEMO_DIR)

demo: install node
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	@echo "== knexwrap up catalog: apply the next pending migration (batch 1)"
	@cd $(PROJECT) && ../../$(KNEXWRAP) up catalog $(DEMO_ARGS) --yes
	@echo; echo "== knexwrap up catalog: and the next one (batch 2)"
	@cd $(PROJECT) && ../../$(KNEXWRAP) up catalog $(DEMO_ARGS) --yes
	@echo; echo "== knexwrap status catalog: applied and pending"
	@cd $(PROJECT) && ../../$(KNEXWRAP) status catalog $(DEMO_ARGS)
	@echo; echo "== knexwrap current catalog"
	@cd $(PROJECT) && ../../$(KNEXWRAP) current catalog $(DEMO_ARGS)
	@echo; echo "== knexwrap status: every plugin database of the project"
	@cd $(PROJECT) && ../../$(KNEXWRAP) status $(DEMO_ARGS)

lint: install
	$(VENV)/bin/ruff check knexwrap tests bench
	$(VENV)/bin/ruff format --check knexwrap tests bench
	$(VENV)/bin/mypy

test: install node judges lint
	$(PY) -m pytest

# The README's exit-code table is generated from the one list in knexwrap/errors.py.
readme: install
	$(PY) -c 'import pathlib, re; from knexwrap.errors import exit_code_table; p = pathlib.Path("README.md"); \
	p.write_text(re.sub(r"(?m)^[|] code [|] meaning [|]\n(^[|].*\n)*", lambda _: exit_code_table() + "\n", p.read_text()))'

bench: install node
	@# Fresh bytecode for every module: PYTHONDONTWRITEBYTECODE may be set, and an edited module would be compiled on every start.
	$(PY) -m compileall -q knexwrap >/dev/null
	$(PY) bench/bench_status.py; $(PY) bench/bench_install.py

# Upgrade day. knexwrap reads the connection from BACKSTAGE's app-config.yaml / .env / POSTGRES_*;
# pass other knexwrap options in KNEXWRAP_ARGS (e.g. KNEXWRAP_ARGS="--config app-config.production.yaml"),
# and downgrade-only ones in DOWNGRADE_ARGS (e.g. DOWNGRADE_ARGS=--yes, --no-backup).
BACKSTAGE ?= $(CURDIR)
KNEXWRAP_BIN := $(abspath $(KNEXWRAP))
# Paths reach the recipes through the environment, quoted there ("$$TO"): a folder name with a space,
# a quote or a $( ) in it is one argument, never shell code. KNEXWRAP_ARGS is split into words on purpose.
export BACKSTAGE TO

pre-upgrade: install
	cd "$$BACKSTAGE" && $(KNEXWRAP_BIN) snapshot $(KNEXWRAP_ARGS)

post-upgrade: install
	cd "$$BACKSTAGE" && $(KNEXWRAP_BIN) archive
	cd "$$BACKSTAGE" && $(KNEXWRAP_BIN) status --check $(KNEXWRAP_ARGS)

downgrade: install
	@test -n "$$TO" || { echo "usage: make downgrade TO=<older install folder or snapshot file>" >&2; exit 2; }
	cd "$$BACKSTAGE" && $(KNEXWRAP_BIN) plan --to "$$TO" $(KNEXWRAP_ARGS)
	cd "$$BACKSTAGE" && $(KNEXWRAP_BIN) downgrade --to "$$TO" $(KNEXWRAP_ARGS) $(DOWNGRADE_ARGS)

dist: install
	$(PY) -m build --outdir dist .

clean:
	rm -rf $(VENV) $(PROJECT)/node_modules $(JUDGES)/node_modules $(DEMO_DIR) dist
