"""The one exception type that means "the user asked for something impossible".

The CLI turns a :class:`UserError` into a single line on stderr and exit code 2; any other exception is a
bug and keeps its traceback. Raise it for bad configs, unreadable data and impossible requests.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""


class ConfigError(UserError):
    """An invalid configuration value or key."""


class DataError(UserError):
    """A corpus, tokenizer or probe file that cannot be used."""


def closest_name(name: object, valid: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The valid name nearest to a mistyped one (difflib's ratio >= ``cutoff``), or None."""
    close = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(name: object, valid: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the nearest valid choice, or ``""``: the hint every unknown-name error uses."""
    close = closest_name(name, valid)
    return f"; did you mean {close!r}?" if close else ""
