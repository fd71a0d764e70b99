"""Ctrl+C that is not lost. Python drops a KeyboardInterrupt raised while a weakref callback or
`__del__` runs ("Exception ignored in ..."), so a long loop could go on after the user pressed
Ctrl+C. The CLI's handler also records the press; loops call `check()` between their steps."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_pressed = False


def on_sigint(signum: int, frame: FrameType | None) -> None:
    global _pressed
    _pressed = True
    raise KeyboardInterrupt


@contextmanager
def recorded() -> Iterator[None]:
    """Takes over SIGINT for the block, unless it is ignored (a shell's background job ignores it)."""
    global _pressed
    _pressed = False
    previous = signal.getsignal(signal.SIGINT)
    takes_over = previous is signal.default_int_handler and threading.current_thread() is threading.main_thread()
    if takes_over:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        if takes_over:
            signal.signal(signal.SIGINT, previous)
        _pressed = False  # the press belonged to this block


def _record_only(signum: int, frame: FrameType | None) -> None:
    global _pressed
    _pressed = True


@contextmanager
def deferred() -> Iterator[None]:
    """Ctrl+C inside the block is only recorded, for bookkeeping that must not stop half done; the
    next `check()` raises it."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN or threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.signal(signal.SIGINT, _record_only)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def check() -> None:
    """Raises KeyboardInterrupt if Ctrl+C was pressed, even where its first raise was swallowed."""
    if _pressed:
        raise KeyboardInterrupt
