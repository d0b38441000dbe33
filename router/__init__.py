"""Wampgate, a secure WAMP router on Twisted and Autobahn.

`wampgate.__version__` has one source, setup.cfg's `version`: an installed Wampgate (wheel or editable) reads it from
its distribution's metadata; a checkout that is not installed reads setup.cfg itself. It is looked up on first use
only, so importing any wampgate module costs no metadata scan.
"""

from __future__ import annotations

from pathlib import Path

UNKNOWN_VERSION = "0+unknown"  # neither installed nor beside its setup.cfg (e.g. a copied tree)


def version() -> str:
    """The installed distribution's version, else the checkout's setup.cfg [metadata] version."""
    from importlib import metadata

    try:
        return metadata.version("wampgate")
    except metadata.PackageNotFoundError:
        return version_in_setup_cfg(Path(__file__).resolve().parent.parent / "setup.cfg")


def version_in_setup_cfg(path: Path) -> str:
    """`version` of [metadata] in the setup.cfg at `path`; UNKNOWN_VERSION when it has none or is not there."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, UnicodeDecodeError, configparser.Error):
        return UNKNOWN_VERSION
    return parser.get("metadata", "version", fallback=UNKNOWN_VERSION).strip() or UNKNOWN_VERSION


def __getattr__(name: str) -> str:
    if name == "__version__":
        return version()
    raise AttributeError(f"module 'wampgate' has no attribute {name!r}")
