"""Errors caused by user input.

The CLI turns any :class:`UserError` into one line on stderr and exit status 2,
so every message must name the problem *and* the fix.
"""


class UserError(Exception):
    """A problem with what the user asked for (config, data, paths)."""


class ConfigError(UserError):
    """A missing, malformed or invalid configuration."""


class DataError(UserError):
    """A dataset that is unknown, missing, corrupt or does not fit the model."""


class RunDirError(UserError):
    """A run directory that cannot be used as asked (finished, missing, ...)."""
