"""Long work that shows progress and can be stopped, for Gradio generator handlers.

Gradio cancels a running event between two steps of a generator handler; a plain function (or one
long step) runs to its end whatever the user does.  :func:`run_cancellable` therefore runs the work
in a thread and, while it runs, yields every ``poll`` seconds; when Gradio stops iterating (Stop
button, closed page) the generator is closed, a flag is set, and the work's next progress call
raises :class:`~tada.errors.Cancelled`, so the computation itself ends within one step.  Library
code without a progress callback checks the same flag (:func:`tada.errors.check_stopped`; ILA's text
encoding does between chunks of phrases).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from tada.errors import Cancelled, stoppable

__all__ = ["run_cancellable"]

T = TypeVar("T")
Progress = Callable[[float, str], Any]


def run_cancellable(
    work: Callable[[Progress], T],
    report: Callable[[float, str], Any] | None = None,
    idle: Any = None,
    poll: float = 0.25,
) -> Generator[Any, None, T]:
    """Run ``work(progress)`` in a thread; yield ``idle`` every ``poll`` s until it ends; return its result.

    Args:
        work: the job; it must call ``progress(fraction, message)`` now and then (that is where a
            stop request takes effect).
        report: shows progress to the user (e.g. a ``gr.Progress``), called from this generator.
        idle: the value yielded while waiting (e.g. a tuple of ``gr.skip()`` for every output).
        poll: seconds between yields.

    Use as ``result = yield from run_cancellable(...)`` inside a generator handler.  Exceptions of
    ``work`` are re-raised here.
    """
    state: dict[str, Any] = {"fraction": 0.0, "message": "", "result": None, "error": None}
    stop = threading.Event()
    done = threading.Event()

    def progress(fraction: float, message: str = "") -> None:
        if stop.is_set():
            raise Cancelled()
        state["fraction"], state["message"] = float(fraction), str(message)

    def target() -> None:
        try:
            with stoppable(stop):  # library loops without a progress callback (text encoding) see Stop too
                state["result"] = work(progress)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting generator
            state["error"] = exc
        finally:
            done.set()

    # Copy the context so Gradio's request context (and ZeroGPU's) follows the work into the thread.
    ctx = contextvars.copy_context()
    threading.Thread(target=ctx.run, args=(target,), daemon=True, name="tada-job").start()
    try:
        while not done.wait(poll):
            if report is not None:
                report(state["fraction"], state["message"])
            yield idle
    finally:
        if not done.is_set():
            stop.set()  # closed early: the user stopped it or went away
    if state["error"] is not None:
        raise state["error"]
    return state["result"]
