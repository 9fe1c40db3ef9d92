"""Progress of the long steps on stderr: rich progress bars on a terminal; plain lines where stderr is not one (batch
logs, CI, tests), without control characters and at most one every few seconds; nothing with --quiet. What a command
produces (a path, a table) goes to stdout and is never mixed with it.

>>> with Display(quiet=True) as display:
...     display.bar("generating", "events").update(5, 10)
...     display.log("not shown")
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

PLAIN_EVERY_S = 5.0  # a plain progress line at most this often (the first and the last always)


class Display:
    """Where a command shows its progress: `log(message)` for lines, `bar(...)` for a count that advances."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = not quiet and self.stream.isatty()
        self._rich = None

    def __enter__(self) -> Display:
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            def text(template: str) -> TextColumn:  # our texts are plain: "[float]" is no style tag
                return TextColumn(template, markup=False)

            self._rich = Progress(text("{task.description}"), BarColumn(), MofNCompleteColumn(), text("{task.fields[unit]}"),
                                  TimeElapsedColumn(), text("ETA"), TimeRemainingColumn(), text("{task.fields[note]}"),
                                  console=Console(file=self.stream), transient=False)
            self._rich.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def log(self, message: str) -> None:
        if self.quiet:
            return
        if self._rich is not None:
            self._rich.console.print(message, markup=False, highlight=False, soft_wrap=True)  # paths stay whole
        else:
            print(message, file=self.stream, flush=True)

    def bar(self, description: str, unit: str, *, rates: bool = True) -> Bar:
        """A count of `unit` towards a total; `rates`: show the rate and the time left in plain lines."""
        return Bar(self, description, unit, rates)


class Bar:
    def __init__(self, display: Display, description: str, unit: str, rates: bool):
        self.display, self.description, self.unit, self.rates = display, description, unit, rates
        self.start: float | None = None  # the clock of rates and times starts with the first update
        self._last_line: tuple[float, tuple] | None = None  # when the last plain line went out, and what it said
        self._task = display._rich.add_task(description, start=False, total=None, unit=unit, note="") if display._rich else None

    def update(self, done: float, total: float, note: str = "") -> None:
        """`done` of `total`; `note` is shown beside (a loss, the jobs running). Call it with done=0 when the work
        starts: rates and times count from the first update."""
        display = self.display
        if display.quiet:
            return
        if self.start is None:
            self.start = time.monotonic()
            if self._task is not None:
                display._rich.start_task(self._task)
        if self._task is not None:
            display._rich.update(self._task, completed=done, total=total, note=note)
        elif self._plain_due(done, total, note):
            print(self.plain_line(done, total, note), file=display.stream, flush=True)

    def _plain_due(self, done: float, total: float, note: str) -> bool:
        """The first line (for rates, once something is done), the last, and between them one every PLAIN_EVERY_S if
        it changed."""
        now, said = time.monotonic(), (done, note)
        if self.rates and done == 0 and total:
            return False
        due = self._last_line is None or (said != self._last_line[1]
                                          and (done >= total or now - self._last_line[0] >= PLAIN_EVERY_S))
        if due:
            self._last_line = (now, said)
        return due

    def plain_line(self, done: float, total: float, note: str = "") -> str:
        """E.g. `generating: 400/1000 events (40%), 133 events/s, ETA 5 s`.

        >>> bar = Display(quiet=True).bar("waiting", "jobs ended", rates=False)
        >>> bar.plain_line(1, 3, "2 running")
        'waiting: 1/3 jobs ended (33%); 2 running'
        """
        line = f"{self.description}: {done:g}/{total:g} {self.unit} ({done / max(total, 1e-300):.0%})"
        if self.rates:
            rate = done / max(time.monotonic() - (self.start or time.monotonic()), 1e-9)
            eta = f"{(total - done) / rate:.0f} s" if rate > 0 else "unknown"
            line += f", {rate:.0f} {self.unit}/s, ETA {eta}"
        return line + (f"; {note}" if note else "")
