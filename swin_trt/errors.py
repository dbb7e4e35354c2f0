"""Errors a user can act on.

A :class:`UserError` carries one short message that says what is wrong and what to do. The CLI prints it
without a traceback and exits with status 2; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: a missing file, an unknown arch, a graph that is not a Swin, ...

    The message names the problem and the fix, e.g. ``"checkpoint 'x.pth' is truncated: re-download it"``.
    """

    exit_code = 2


class GateFailed(Exception):
    """A validation gate (``--atol``, ``--min-cosine``, ...) was not met: exit status 1."""

    exit_code = 1
