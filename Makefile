# The two commands of the README: `make run` and `make test`. Each creates or reuses .venv and installs first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CONFIG ?= conf/dev.toml
PEER ?=

.PHONY: run test install clean bench demo docs

run: $(INSTALLED)
	$(BIN)/twistd --nodaemon --pidfile= --logger wampgate.tx.logs.text wampgate --config $(CONFIG)

test: $(INSTALLED)
	$(BIN)/python -m pytest

install: $(INSTALLED)

# The live price board of examples/pricewatch: a web page, a Python backend and a login, at http://127.0.0.1:8088/
demo: $(INSTALLED)
	$(BIN)/python examples/pricewatch/run.py

# Benchmarks (bench/README.md): Wampgate and a bare-Autobahn ceiling server; PEER=crossbar adds Crossbar.io, installed
# into its own virtualenv under bench/ (never a project dependency).
bench: $(INSTALLED)
	$(BIN)/python -m bench $(if $(PEER),--peer $(PEER))

# The documentation site (mkdocs.yml, docs/) in strict mode: any warning, broken link or missing anchor fails.
docs: $(INSTALLED)
	$(BIN)/python -m mkdocs build --strict --site-dir site

# A standard (PEP 660) editable install maps the `wampgate` package onto router/ and plugins/ but cannot map the twistd
# dropin into Twisted's plugin folder, so it is linked there (a wheel ships it in place: see tests/integration/test_wheel.py).
$(INSTALLED): setup.cfg pyproject.toml examples/quota_authorizer/pyproject.toml examples/quota_authorizer/quota_authorizer/__init__.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	ln -sf $(CURDIR)/twisted/plugins/wampgate_dropin.py "$$($(BIN)/python -c 'import os, twisted.plugins as p; print(os.path.dirname(p.__file__))')/"
	$(BIN)/python -m pip install --quiet ./examples/quota_authorizer
	touch $@

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
	find . -name dropin.cache -delete
