"""User-facing errors: raised at the edges with a message that says what to do."""

from __future__ import annotations


class LivepuppetError(Exception):
    """Base class: its message is shown to the user as one line, without a traceback."""


class ConfigError(LivepuppetError):
    """A configuration key or value is wrong."""


class InputError(LivepuppetError):
    """An input file or stream cannot be used (not an image, corrupt video, too small, too large)."""


class NoFaceError(InputError):
    """The portrait or driver has no detectable face."""


class DependencyError(LivepuppetError):
    """An optional dependency is missing; the message names the install command."""
