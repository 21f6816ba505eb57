"""How the command line reports failures.

A user's mistake is one line ``cnnkit: error: ...`` on stderr and exit status 2. The errors
the library documents for bad input (ValueError, OSError and its subclasses, EOFError from a
truncated compressed file, MemoryError) count as mistakes, and so does ImportError (the
library's message for a missing optional dependency says what to install). Any other
exception is a bug in cnnkit: one line ``cnnkit: internal error: ...`` asking for a report,
exit status 1. With ``CNNKIT_DEBUG=1`` in the environment every error is re-raised, with
its traceback.
Ctrl-C prints ``cnnkit: interrupted`` and exits 130 (128 + SIGINT), as shells expect; a
closed output pipe (``cnnkit summary vgg16 | head``) ends quietly with status 1.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Errors that the library raises for bad files, bad arguments and too little memory.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, EOFError, MemoryError,
                                                zlib.error, ImportError)
EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 2, 1, 130


class UsageError(Exception):
    """A mistake in what the user asked for; reported in one line, exit status 2."""


def one_line(text: str) -> str:
    """``text`` with its lines joined (a message must stay on one line)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def describe(exc: BaseException) -> str:
    """A one-line message for a library error: OSError as 'reason: file', MemoryError with
    what it could not allocate."""
    if isinstance(exc, UsageError):
        return one_line(str(exc))
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    if isinstance(exc, MemoryError):
        return f"out of memory ({one_line(str(exc)) or 'allocation failed'})"
    if isinstance(exc, EOFError):
        return f"the file ends too early (truncated): {one_line(str(exc))}"
    text = one_line(str(exc))
    return text or type(exc).__name__


@contextmanager
def about(what: str) -> Iterator[None]:
    """Turn a library error raised inside the block into a UsageError naming ``what`` (the
    option or file the user gave), unless the message already names it."""
    try:
        yield
    except (UsageError, BrokenPipeError):
        raise
    except USER_ERRORS as e:
        msg = describe(e)
        raise UsageError(msg if what in msg else f"{what}: {msg}") from e


def _debug() -> bool:
    return os.environ.get("CNNKIT_DEBUG", "") not in ("", "0")


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def guarded(run: Callable[[], int]) -> int:
    """Run one command; report every failure in one line with the documented exit status."""
    try:
        return run()
    except KeyboardInterrupt:
        if _debug():
            raise
        _say("cnnkit: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of our output went away (`cnnkit ... | head`)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the exit flush cannot fail
        return EXIT_BUG
    except (UsageError, *USER_ERRORS) as e:
        if _debug():
            raise
        msg = describe(e)
        _say(msg if msg.startswith("cnnkit") else f"cnnkit: error: {msg}")
        return EXIT_USAGE
    except Exception as e:  # a bug in cnnkit, not the user's mistake
        if _debug():
            raise
        _say(f"cnnkit: internal error: {type(e).__name__}: {describe(e)} (please report it; "
             f"rerun with CNNKIT_DEBUG=1 for the traceback)")
        return EXIT_BUG
