"""`wampgate.__version__` has one source, setup.cfg's [metadata] version: through the installed distribution's
metadata, or read from setup.cfg by a checkout that is not installed."""

from __future__ import annotations

import configparser
from importlib import metadata
from pathlib import Path

import pytest

import wampgate

SETUP_CFG = Path(__file__).resolve().parents[2] / "setup.cfg"


def setup_cfg_version() -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(SETUP_CFG, encoding="utf-8")
    return parser["metadata"]["version"]


def test_version_is_setup_cfg_version():
    """The running (installed) package reports setup.cfg's version, both as `__version__` and from `version()`."""
    assert wampgate.__version__ == setup_cfg_version() == wampgate.version()
    from wampgate import __version__

    assert __version__ == setup_cfg_version()


def test_uninstalled_checkout_reads_setup_cfg(monkeypatch):
    """With no `wampgate` distribution installed, the version comes from the setup.cfg beside router/."""

    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert wampgate.version() == setup_cfg_version()


@pytest.mark.parametrize("text", [None, "[metadata]\nname = wampgate\n", "not an ini file", "[metadata]\nversion =\n"],
                         ids=["missing", "no version", "unparsable", "empty version"])
def test_setup_cfg_without_a_version_gives_the_unknown_marker(tmp_path, text):
    """A tree that is neither installed nor beside a usable setup.cfg says "0+unknown" (a valid PEP 440 version that
    sorts before every release) instead of failing the import."""
    path = tmp_path / "setup.cfg"
    if text is not None:
        path.write_text(text)
    assert wampgate.version_in_setup_cfg(path) == wampgate.UNKNOWN_VERSION == "0+unknown"


def test_other_missing_attributes_still_raise():
    """The lazy `__version__` does not hide real typos: any other missing attribute is an AttributeError."""
    with pytest.raises(AttributeError, match="no attribute 'versoin'"):
        wampgate.versoin  # noqa: B018
