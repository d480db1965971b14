"""Progress of long computations on stderr: a tqdm bar on a terminal, plain lines otherwise.

Every solver takes ``progress``: None (default) shows a bar when stderr is a terminal and
otherwise a plain line every few seconds (so that logs of batch jobs show the computation is
alive, and fast calls print nothing); True always shows a bar; False is silent.
:func:`compile_notice` prints one line when numba starts compiling the package's kernels
(once per installation and numba version: they are cached on disk afterwards).
"""

from __future__ import annotations

import contextlib
import sys
import time

__all__ = ["Progress", "compile_notice"]

_INTERVAL = 5.0  # seconds between plain lines


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:02.0f} min"


class Progress:
    """Progress over ``total`` units of work.

    Parameters
    ----------
    total : int
        Units of work (e.g. replica steps); the estimated time left assumes equal units unless
        ``total_work`` is given.
    desc : str
        What is being computed, at the start of every line.
    unit : str
        Name of a unit.
    enabled : bool or None
        None: a bar on a terminal, a plain line every ``interval`` seconds otherwise (the first
        one after ``interval`` seconds); True: always a bar; False: nothing.
    interval : float, optional
        Seconds between plain lines (default 5).
    stream : file, optional
        Where to write (default ``sys.stderr``).
    total_work : float, optional
        When units cost unequal amounts (a DMFT step at time t costs ~t + 1): the total cost,
        with ``update(n, work=...)`` giving the cost of the units done; the percentage, the
        bar and the time left then follow the work, the counts stay in units.

    Examples
    --------
    >>> with Progress(3, "demo", enabled=False) as bar:
    ...     for _ in range(3):
    ...         bar.update()
    >>> bar.done
    3
    """

    def __init__(self, total: int, desc: str, unit: str = "step", enabled: bool | None = None,
                 interval: float | None = None, stream=None, total_work: float | None = None):
        self.total, self.desc, self.unit = int(total), desc, unit
        self.done = 0
        self._weighted = total_work is not None
        self.total_work = float(total_work) if self._weighted else float(self.total)
        self.work = 0.0
        self._stream = sys.stderr if stream is None else stream
        self._interval = _INTERVAL if interval is None else interval
        self._start = self._last = time.perf_counter()
        self._rate_from = None  # (time, done) at the first update: the first unit may compile
        self._printed = False
        self._bar = None
        isatty = getattr(self._stream, "isatty", lambda: False)()
        self._plain = enabled is None and not isatty
        if enabled or (enabled is None and isatty):
            from tqdm.auto import tqdm

            if self._weighted:  # the bar counts work: show percentage and times only
                self._bar = tqdm(total=self.total_work, desc=desc, file=self._stream,
                                 bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                                            "[{elapsed}<{remaining}]")
            else:
                self._bar = tqdm(total=self.total, desc=desc, unit=unit, file=self._stream)

    def update(self, n: int = 1, work: float | None = None) -> None:
        """Record n more units done (costing ``work``, by default n)."""
        work = float(n) if work is None or not self._weighted else float(work)
        if self._rate_from is None:
            self._rate_from = (time.perf_counter(), self.work + work)
        self.done += n
        self.work += work
        if self._bar is not None:
            self._bar.update(work if self._weighted else n)
        elif self._plain:
            now = time.perf_counter()
            if now - self._last >= self._interval:
                self._last = now
                self._line(now)

    def _line(self, now: float, final: bool = False) -> None:
        elapsed = now - self._start
        text = f"{self.desc}: {self.done}/{self.total} {self.unit}s"
        if final:
            text += f", done in {_duration(elapsed)}"
        else:
            if self.total_work:
                text += f" ({100 * self.work / self.total_work:.0f}%)"
            text += f", {_duration(elapsed)} elapsed"
            t0, work0 = self._rate_from or (now, self.work)
            if work0 < self.work < self.total_work and now > t0:  # rate since the 1st update
                rate = (self.work - work0) / (now - t0)
                text += f", about {_duration((self.total_work - self.work) / rate)} left"
        print(text, file=self._stream, flush=True)
        self._printed = True

    def close(self) -> None:
        """Close the bar; after plain progress lines, print a last one with the total time."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._printed:
            self._line(time.perf_counter(), final=True)
            self._printed = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_PACKAGES = ("solvers.", "dmft.")


@contextlib.contextmanager
def compile_notice(what: str, seconds: float, enabled: bool | None = True, on_start=None,
                   stream=None):
    """Print one line on stderr when numba starts compiling kernels of this package inside the
    ``with`` block (a first run, before numba's disk cache holds them), whether or not stderr
    is a terminal; ``enabled=False`` is silent.

    Parameters
    ----------
    what : str
        What the kernels compute, e.g. "the multi-pass DMFT".
    seconds : float
        The compilation's typical duration on two cores, quoted in the line.
    enabled : bool or None
        False: no line (``on_start`` is still called).
    on_start : callable, optional
        Called (without arguments) at the same moment, e.g. to compile other kernels in a
        helper process meanwhile.

    Examples
    --------
    >>> with compile_notice("a demo", seconds=1.0):
    ...     pass  # nothing compiled: nothing printed
    """
    if enabled is False and on_start is None:
        yield
        return
    from numba.core import event

    out = sys.stderr if stream is None else stream
    state = {"seen": False}

    class _Listener(event.Listener):
        def on_start(self, ev):
            if state["seen"]:
                return
            module = getattr(ev.data["dispatcher"].py_func, "__module__", "") or ""
            if not module.startswith(_PACKAGES):
                return
            state["seen"] = True
            if enabled is not False:
                print(f"dmft: compiling numba kernels for {what} (first run only, "
                      f"~{_duration(seconds)})", file=out, flush=True)
            if on_start is not None:
                on_start()

        def on_end(self, ev):
            pass

    with event.install_listener("numba:compile", _Listener()):
        yield
