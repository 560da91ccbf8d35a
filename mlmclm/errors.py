"""The one exception type that means "the user asked for something impossible".

The CLI turns a :class:`UserError` into a single line on stderr and exit code 2; any other exception is a
bug and keeps its traceback. Raise it for bad configs, unreadable data and impossible requests.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""


class ConfigError(UserError):
    """An invalid configuration value or key."""


class DataError(UserError):
    """A corpus, tokenizer or probe file that cannot be used."""
