# The two commands of the README: `make run` and `make test`, each creating or updating its virtualenv first.
# `make run` (and `demo`, `bench`) use .venv: Wampgate and its runtime dependencies only. `make test` uses .venv-test:
# the same plus the test extras and the test-only plugins, so nothing only a test needs (such as the `testtoken`
# authenticator, which accepts a fixed token) is ever in the environment that serves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TEST_VENV := .venv-test
TEST_BIN := $(TEST_VENV)/bin
# Installed into .venv-test only: the example authorizer the tests load, and the tests' third-party authenticator.
TEST_PLUGINS := examples/quota_authorizer tests/support/authplugin
CONFIG ?= conf/dev.toml
PEER ?=
# Passed to pytest by `make test`, e.g. PYTEST_ARGS="tests/unit -x" or PYTEST_ARGS="-m 'not slow'".
PYTEST_ARGS ?=

.PHONY: run test install test-deps clean bench demo docs

run: $(VENV)/.installed
	$(BIN)/twistd --nodaemon --pidfile= --logger wampgate.tx.logs.text wampgate --config $(CONFIG)

test: $(TEST_VENV)/.installed
	$(TEST_BIN)/python -m pytest $(PYTEST_ARGS)

install: $(VENV)/.installed $(TEST_VENV)/.installed

# System packages for the browser tests (Debian's Chromium) and the Redis tests (Debian's redis-server, only its binary:
# no service is started), installed with apt-get (through sudo when not root).
# `make test` never installs them: without them those tests are skipped, saying so; CI (CI=true) installs them.
test-deps:
	$(PYTHON) -m tests.support.system_packages

# The live price board of examples/pricewatch: a web page, a Python backend and a login, at http://127.0.0.1:8088/
demo: $(VENV)/.installed
	$(BIN)/python examples/pricewatch/run.py

# Benchmarks (bench/README.md): Wampgate and a bare-Autobahn ceiling server; PEER=crossbar adds Crossbar.io, installed
# into its own virtualenv under bench/ (never a project dependency).
bench: $(VENV)/.installed
	$(BIN)/python -m bench $(if $(PEER),--peer $(PEER))

# The documentation site (mkdocs.yml, docs/) in strict mode: any warning, broken link or missing anchor fails.
# mkdocs is a test (and docs) extra, so the site is built with the test environment.
docs: $(TEST_VENV)/.installed
	$(TEST_BIN)/python -m mkdocs build --strict --site-dir site

# A standard (PEP 660) editable install maps the `wampgate` package onto router/ and plugins/ but cannot map the
# twistd dropin into Twisted's plugin folder, so it is linked there (a wheel ships it in place:
# tests/integration/test_wheel.py). $(1) is the virtualenv.
define link_dropin
	ln -sf $(CURDIR)/twisted/plugins/wampgate_dropin.py \
		"$$($(1)/bin/python -c 'import os, twisted.plugins as p; print(os.path.dirname(p.__file__))')/"
endef

# (Earlier versions of this file installed the test authenticator into .venv: it is removed if found.)
$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m pip uninstall --quiet --yes wampgate-testtoken 2>/dev/null || true
	$(call link_dropin,$(VENV))
	touch $@

$(TEST_VENV)/.installed: setup.cfg pyproject.toml $(wildcard $(addsuffix /pyproject.toml,$(TEST_PLUGINS)) $(addsuffix /*/*.py,$(TEST_PLUGINS))) | $(TEST_BIN)/python
	$(TEST_BIN)/python -m pip install --quiet --upgrade pip
	$(TEST_BIN)/python -m pip install --quiet -e '.[test]' $(addprefix ./,$(TEST_PLUGINS))
	$(call link_dropin,$(TEST_VENV))
	touch $@

%/bin/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $*

clean:
	rm -rf $(VENV) $(TEST_VENV) build *.egg-info .pytest_cache .hypothesis
	find . -name dropin.cache -delete
