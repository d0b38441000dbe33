# The two commands of the README: `make run` and `make test`. Each creates or reuses .venv and installs first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CONFIG ?= conf/dev.toml
PEER ?=

.PHONY: run test install clean bench demo

run: $(INSTALLED)
	$(BIN)/twistd --nodaemon --pidfile= --logger router.tx.logs.text wampgate --config $(CONFIG)

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

# compat editable mode keeps the checkout on sys.path, so twisted/plugins/ is found (a PEP 660 install hides it).
$(INSTALLED): setup.cfg pyproject.toml examples/quota_authorizer/pyproject.toml examples/quota_authorizer/quota_authorizer/__init__.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	$(BIN)/python -m pip install --quiet ./examples/quota_authorizer
	touch $@

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
	find . -name dropin.cache -delete
