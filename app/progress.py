"""Progress of a long step (embedding a build's passages): a tqdm bar on a terminal, a plain line every few seconds
anywhere else (a pipe, a log file, `make run` in a CI job), so a long build is never silent."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

from tqdm import tqdm

LINE_INTERVAL = 5.0  # seconds between two lines on a stream that is not a terminal


class Progress(Protocol):
    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


class LineProgress:
    """tqdm's `update` / `close` as lines: done/total, rate and time left, at most one every `interval` seconds,
    and a last one when a step that took longer than `interval` ends (a shorter step writes nothing)."""

    def __init__(self, total: int, desc: str, *, initial: int = 0, unit: str = "passage", stream: TextIO | None = None,
                 interval: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.total, self.desc, self.unit = total, desc, unit
        self.done = self._start_done = initial
        self._stream = stream
        self._interval = LINE_INTERVAL if interval is None else interval
        self._clock = clock
        self._started = self._last = clock()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.done < self.total and self._clock() - self._last >= self._interval:  # the end has a line of its own
            self._write(self._line())

    def close(self) -> None:
        elapsed = self._clock() - self._started
        if elapsed >= self._interval:
            self._write(f"{self.desc}: {self.done}/{self.total} {self.unit}s in {elapsed:.0f} s")

    def _line(self) -> str:
        elapsed = self._clock() - self._started
        rate = (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0
        percent = 100 * self.done / self.total if self.total else 100.0
        left = f", ~{(self.total - self.done) / rate:.0f} s left" if rate > 0 else ""
        return f"{self.desc}: {self.done}/{self.total} {self.unit}s ({percent:.0f} %), {rate:.1f}/s{left}"

    def _write(self, line: str) -> None:
        stream = self._stream or sys.stderr
        print(line, file=stream, flush=True)
        self._last = self._clock()


def progress_bar(total: int, desc: str, *, enabled: bool, initial: int = 0, unit: str = "passage",
                 stream: TextIO | None = None) -> Progress:
    """What reports a step's progress on `stream` (stderr by default): nothing when not `enabled`, a tqdm bar when
    the stream is a terminal, else a `LineProgress`."""
    stream = stream or sys.stderr
    if enabled and not _is_terminal(stream):
        return LineProgress(total, desc, initial=initial, unit=unit, stream=stream)
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, file=stream)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
