"""User-facing errors.

Every problem caused by the user's input (a missing file, a corrupt video, an unknown frame name,
a matrix of the wrong shape) is raised as :class:`ReseqError` with a one-line message. The CLI
prints that line and exits non-zero; it never shows a traceback for them.
"""

from __future__ import annotations

__all__ = ["ReseqError", "ReseqWarning"]


class ReseqError(Exception):
    """An error whose message is meant for the user, one line, no traceback."""

    exit_code: int = 2


class ReseqWarning(UserWarning):
    """Something the user should know that does not stop the work (a skipped file, a discarded
    cache entry). The CLI prints it as one ``reseq: warning: ...`` line."""
