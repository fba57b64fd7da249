"""Hysteresis for boolean conditions: a blip is not an incident.

A condition must hold ``min_on`` evaluations in a row to become active and be
false ``min_off`` evaluations in a row to become inactive again. Unknown (no
data) neither starts nor ends anything: missing data is not "fine".
"""

from __future__ import annotations


class Persistence:
    def __init__(self, min_on: int, min_off: int) -> None:
        if min_on < 1 or min_off < 1:
            raise ValueError("min_on and min_off must be >= 1")
        self.min_on = min_on
        self.min_off = min_off
        self.active = False
        self._on_run = 0
        self._off_run = 0
        self.since: float | None = None  # time the current active spell began

    def update(self, condition: bool | None, ts: float) -> bool:
        """Feed one evaluation at ``ts``; returns whether the condition is active."""
        if condition is None:
            return self.active
        if condition:
            self._on_run += 1
            self._off_run = 0
            if not self.active and self._on_run >= self.min_on:
                self.active = True
                # The spell began when the run began, not when it was confirmed.
                self.since = ts - (self._on_run - 1)
        else:
            self._off_run += 1
            self._on_run = 0
            if self.active and self._off_run >= self.min_off:
                self.active = False
                self.since = None
        return self.active
