"""Expected failures: what a user can fix (a bad option, a missing model, an output another run holds).

The command line turns these — and :class:`~bluerec.config.ConfigError`, :class:`~bluerec.data.errors.DataError`
and ``OSError`` — into one line and exit code 2 (see :mod:`bluerec.cli._common`). Anything else is a bug and
keeps its traceback.

Example:
    ::

        from bluerec.errors import UserError

        try:
            raise UserError("--max-users must be >= 1, got 0")
        except UserError as err:
            print(f"error: {err}")
"""

from __future__ import annotations


class UserError(ValueError):
    """An expected failure; ``str(err)`` names the thing at fault and what to do about it."""
