"""Ctrl-C on the command line: one line, exit 130, at any moment, with every file whole.

Python turns SIGINT into a `KeyboardInterrupt` raised wherever the main thread happens to be. In a
JAX process that can be a garbage-collector callback (JAX registers one), where Python prints
"Exception ignored ..." with a traceback and swallows it: the run then went on as if nothing had
been pressed. Raised during compilation, the exception unwound through the interpreter's
shutdown while XLA's threads were still busy and the process crashed (SIGSEGV).

So the `magejax` command installs `exit_on_interrupt`: the handler itself prints the line and
leaves with `os._exit(130)`, at once. That is as safe as a SIGKILL, which the checkpoint tests
cover (a killed run resumes exactly), and safer: inside `deferred()` blocks (a metrics write, a
checkpoint save) the exit waits until the block ends, so no file is left half written. Library
code and tests calling `magejax.cli.main` in-process keep Python's default behaviour.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Callable

INTERRUPTED = 130  # the shell's code for a process stopped by SIGINT (128 + 2)

# Process-wide by nature (a signal handler is): the handler's message, the depth of deferred
# blocks, and whether an interrupt is waiting for the outermost block to end.
_state = {"depth": 0, "pending": False, "message": lambda: ""}


def exit_on_interrupt() -> None:
    """From now on, SIGINT prints 'magejax: interrupted...' and exits 130 (see the module doc)."""
    signal.signal(signal.SIGINT, _handler)


def set_message(message: Callable[[], str]) -> None:
    """What the interrupt line adds after 'magejax: interrupted; ' (e.g. how to resume)."""
    _state["message"] = message


@contextlib.contextmanager
def deferred():
    """A block that an interrupt does not cut: the exit waits for its end (nesting allowed)."""
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0 and _state["pending"]:
            _exit()


def _handler(signum, frame) -> None:
    if _state["depth"]:
        _state["pending"] = True
        return
    _exit()


def _exit() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while leaving changes nothing
    try:
        extra = _state["message"]()
    except Exception:  # noqa: BLE001 — the line must come out whatever the message does
        extra = ""
    sys.stdout.flush()
    print("\nmagejax: interrupted" + (f"; {extra}" if extra else ""), file=sys.stderr, flush=True)
    os._exit(INTERRUPTED)
