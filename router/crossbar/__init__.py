"""`wampgate import-crossbar`: a Crossbar node config (config.json) as Wampgate TOML, with every option it could not
carry over listed as a comment saying why. `convert` (router/crossbar/convert.py) is the entry point."""
