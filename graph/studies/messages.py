"""How the CLI words a failure: one line, ``coinfer COMMAND: cause``.

Subcommands that catch their own errors (to add a hint, or to keep going) and
the top-level handler in :mod:`.cli` all print through :func:`error_line`, so a
message that already names the subcommand is not prefixed twice.
"""
from __future__ import annotations

__all__ = ["one_line", "error_line"]


def one_line(e: BaseException, command: str = "") -> str:
    """The cause of a failure on one line: the message without a repeat of the
    subcommand's own prefix (``coinfer COMMAND:`` or ``COMMAND:``), else the
    exception's type name."""
    msg = " ".join(str(e).split())
    changed = True
    while command and changed:
        changed = False
        for prefix in (f"coinfer {command}: ", f"{command}: "):
            if msg.startswith(prefix):
                msg, changed = msg[len(prefix):], True
    return msg if msg else type(e).__name__


def error_line(command: str, e: BaseException, hint: str = "") -> str:
    """``coinfer COMMAND: cause`` (see :func:`one_line`), then ``hint`` as given."""
    return f"coinfer {command}: {one_line(e, command)}{hint}"
