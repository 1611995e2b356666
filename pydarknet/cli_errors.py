"""The one error policy of every pydarknet command: ``pydarknet`` and its subcommands (convert, dataset, train,
video, demo ...) and the examples' scripts.

* errors a user can cause and act on: pydarknet's own (:class:`~pydarknet.errors.DarknetError`: a bad cfg,
  weights, names, data file or dataset, each naming its file), bad values (``ValueError``), files that are
  missing, unreadable or cannot be written (``OSError``), and running out of memory -> one line on stderr,
  ``PROG: error: <message>`` (the message's own line breaks folded), exit status 1;
* Ctrl-C -> ``PROG: interrupted`` (and what the command says about its outputs), exit status 130;
* anything else is a bug: its traceback is shown, as Python shows it.

Bad arguments are argparse's (exit status 2) before any of this runs.
"""
from __future__ import annotations

import sys
from typing import Callable, Optional

from .errors import DarknetError

__all__ = ["USER_ERRORS", "error_message", "run_reporting_errors"]

USER_ERRORS = (DarknetError, ValueError, OSError, MemoryError)


def error_message(error: BaseException) -> str:
    """An exception as one line: its message with every run of whitespace (line breaks too) folded to a space."""
    return " ".join(str(error).split()) or type(error).__name__


def run_reporting_errors(function: Callable[[], Optional[int]], prog: str,
                         interrupted_note: Optional[str] = None) -> int:
    """Run a command's body under the policy above and return its exit status.  ``interrupted_note``: what the
    command wants said after ``interrupted`` (e.g. "no output was written")."""
    try:
        return int(function() or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted" + (f"; {interrupted_note}" if interrupted_note else ""), file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        print(f"{prog}: error: {error_message(error)}", file=sys.stderr)
        return 1
