"""Helpers of the write-gate tests."""

from __future__ import annotations

import threading
import time

from scim_bridge.storage.write_gate import WriteGate


def time_to_pass(gate: WriteGate) -> float:
    """Enter *gate* from another thread (the gate is re-entrant within one); return how long it took."""
    took: list[float] = []

    def enter() -> None:
        started = time.monotonic()
        with gate.passed():
            took.append(time.monotonic() - started)

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join(5)
    return took[0]
