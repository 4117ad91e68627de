"""Presets: TOML files loaded by :mod:`livepuppet.engine.config`."""
