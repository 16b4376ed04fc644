"""Progress reporting that reads well both in a terminal and in a log.

In a terminal (stderr is a TTY) :func:`progress_bar` is a tqdm bar. Elsewhere — a Ray
worker, whose output Ray forwards line by line, CI, a file — a bar's refreshes would each
become a log line, so it prints a handful of plain lines instead: the start, every quarter,
and the end, each with the latest postfix values.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class LogProgress:
    """tqdm's ``update`` / ``set_postfix`` / ``close`` as at most ~6 plain lines on ``file``."""

    def __init__(self, total: int, desc: str, unit: str = "step", file=None, every: float = 0.25):
        self.total, self.desc, self.unit = max(1, int(total)), desc, unit
        self.file = file or sys.stderr
        self.n, self.postfix, self.t0 = 0, "", time.perf_counter()
        self.every = every
        self._next = every
        self._closed = False
        self._line(f"0/{self.total} {unit}s")

    def _line(self, text: str) -> None:
        print(f"{self.desc}: {text}{(', ' + self.postfix) if self.postfix else ''}", file=self.file, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n / self.total >= self._next and self.n < self.total:
            self._line(f"{self.n}/{self.total} {self.unit}s ({100 * self.n / self.total:.0f}%), "
                       f"{time.perf_counter() - self.t0:.1f} s")
            while self.n / self.total >= self._next:
                self._next += self.every

    def set_postfix(self, **kwargs: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kwargs.items())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._line(f"done, {self.n} {self.unit}s in {time.perf_counter() - self.t0:.1f} s")


def progress_bar(total: int, desc: str, unit: str = "step"):
    """A tqdm bar on a terminal, else a :class:`LogProgress`."""
    if getattr(sys.stderr, "isatty", lambda: False)():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, mininterval=1.0)
    return LogProgress(total, desc, unit)
