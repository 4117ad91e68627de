"""Command-line interface: ``livepuppet demo | animate | track``."""
