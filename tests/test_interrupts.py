"""Ctrl+C survives Python dropping a KeyboardInterrupt raised inside a finalizer."""

from __future__ import annotations

import os
import signal
import time

import pytest

from marlo_rllib import interrupts

# the point of these tests: Python reports the dropped KeyboardInterrupt as unraisable
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(autouse=True)
def default_sigint():
    """Python's own SIGINT handler, whatever the test process inherited (a background job starts with SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


class SignalledWhileFinalized:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # the handler runs in here, and Python prints "Exception ignored in ..."


def test_a_ctrl_c_swallowed_by_a_finalizer_still_stops_the_next_check():
    with interrupts.recorded():
        SignalledWhileFinalized()
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_new_command_starts_without_the_last_ones_ctrl_c():
    with interrupts.recorded():
        SignalledWhileFinalized()
    with interrupts.recorded():
        interrupts.check()


def test_an_ignored_sigint_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts.recorded():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_inside_a_deferred_block_waits_for_the_next_check():
    finished = False
    with interrupts.recorded():
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            finished = True
        assert signal.getsignal(signal.SIGINT) is interrupts.on_sigint
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    assert finished
    interrupts.check()  # the press ended with its command
