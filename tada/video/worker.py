"""Isolated decoder processes: a crash, an abort or a hang in a decoder never takes the app down.

decord aborts the whole process when a reader is used from several threads, and FFmpeg-based
decoders have crash and hang reports on malformed files.  So every decode runs in a separate worker
process, one call at a time, under a wall-clock limit:

* a worker that dies (SIGABRT, SIGSEGV, ``os._exit``) is detected at once (its pipe closes) and the
  call raises :class:`VideoError` ``decoder_crashed``; the next call gets a fresh worker;
* a worker that does not answer within the time limit is killed; the call raises ``timeout``;
* several threads (Gradio handlers) can call at once: each call leases its own worker from a small
  pool, so one bad file only ever affects its own request.

Workers are plain ``python -c`` subprocesses talking over two pipes (``multiprocessing.connection``)
rather than a ``ProcessPoolExecutor``: a multiprocessing child re-imports the app's ``__main__``
(for a Gradio app: torch, gradio, the models, ~0.5 GB and seconds), while this worker imports only
numpy and PyAV.  It loads ``tada.video.*`` without running ``tada/__init__.py`` (which imports torch).
Large numpy results travel as raw out-of-band buffers (pickle protocol 5), received straight into
their final array: no extra copy on either side.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from tada.video.errors import VideoError

__all__ = ["DecoderPool", "get_pool", "run_isolated", "shutdown", "warm_up"]

logger = logging.getLogger("tada.video.decoder")

_VIDEO_DIR = os.path.dirname(os.path.abspath(__file__))

# Runs in the child.  Stub package objects let ``import tada.video.x`` find the files without
# executing ``tada/__init__.py`` or ``tada/video/__init__.py``.
_BOOTSTRAP = """
import os, sys, types
rfd, wfd, video_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for name, path in (("tada", os.path.dirname(video_dir)), ("tada.video", video_dir)):
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module
from tada.video.worker import _serve
_serve(rfd, wfd)
"""

_START_TIMEOUT_S = 60.0
_CHUNK = 1 << 20


def _send_result(conn: Connection, status: str, obj: Any) -> None:
    """Header (pickle with out-of-band buffers left out) then each buffer's raw bytes, no copies."""
    buffers: list[pickle.PickleBuffer] = []
    try:
        payload = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    except Exception as exc:  # an unpicklable exception or result: report it as text
        status, buffers = "error", []
        payload = pickle.dumps(RuntimeError(f"{type(obj).__name__}: {obj!r} (not picklable: {exc})"))
    raws = [b.raw() for b in buffers]
    conn.send((status, payload, [r.nbytes for r in raws]))
    fd = conn.fileno()
    for raw in raws:
        pos = 0
        while pos < raw.nbytes:
            pos += os.write(fd, raw[pos : pos + _CHUNK])


def _recv_into(conn: Connection, buf: bytearray, timeout: float) -> bool:
    """Read exactly ``len(buf)`` raw bytes into ``buf`` (False on timeout; EOFError if the pipe closes).

    ``Connection.recv_bytes_into`` would first read the whole message into a temporary buffer.
    """
    view, fd, pos = memoryview(buf), conn.fileno(), 0
    while pos < len(buf):
        if not conn.poll(timeout):
            return False
        n = os.readv(fd, [view[pos : pos + _CHUNK]])
        if n == 0:
            raise EOFError("the decoder process closed its pipe")
        pos += n
    return True


def _grow_pipe(fd: int) -> None:
    try:  # fewer system calls for 40 MB of frames (Linux only; the default is 64 KiB)
        import fcntl

        fcntl.fcntl(fd, 1031, 1 << 20)  # F_SETPIPE_SZ
    except (ImportError, OSError):
        pass


def _exit_with_parent(parent: int, interval_s: float = 0.2) -> None:
    """End this worker as soon as the app that started it is gone.

    A worker busy in a decode only sees its pipe close when the call returns; an app stopped by SIGTERM
    runs no ``atexit``, so without this watch a long decode would go on after the server stopped.
    (``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that started the worker ends, and
    Gradio's handler threads come and go.)
    """

    def watch() -> None:
        import time

        while os.getppid() == parent:
            time.sleep(interval_s)
        os._exit(0)

    threading.Thread(target=watch, name="tada-parent-watch", daemon=True).start()


def _serve(rfd: int, wfd: int) -> None:
    """Worker main loop: receive ``(fn, args, kwargs)``, answer ``(status, payload, buffer sizes)``."""
    _exit_with_parent(os.getppid())
    rx, tx = Connection(rfd, writable=False), Connection(wfd, readable=False)
    # Pay the imports (numpy, PyAV: ~0.1 s) before saying ready, not in the first call's time limit.
    import av  # noqa: F401

    import tada.video.decode  # noqa: F401

    tx.send(("ready", os.getpid()))
    while True:
        try:
            fn, args, kwargs = rx.recv()
        except (EOFError, OSError):
            return  # the app closed the pipe (or died): nothing left to do
        try:
            result, status = fn(*args, **kwargs), "ok"
        except Exception as exc:
            result, status = exc, "error"
        _send_result(tx, status, result)
        del result


def _log_stderr(stream: Any, tail: deque[str]) -> None:
    """Forward a worker's stderr (FFmpeg's and decord's own log lines) to the Python logger.

    Decoders print lines such as ``[h264 @ 0x...] error while decoding MB`` straight to file
    descriptor 2; they are for developers, so they go to ``logging`` at debug level, never to a
    terminal, a CLI's stderr or a page. The last lines are kept for a worker that fails to start.
    """
    with stream:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                tail.append(line)
                logger.debug("decoder: %s", line)


class _Worker:
    """One decoder subprocess and its two pipes."""

    def __init__(self) -> None:
        child_rx, parent_tx = os.pipe()
        parent_rx, child_tx = os.pipe()
        _grow_pipe(parent_rx)
        self.stderr_tail: deque[str] = deque(maxlen=20)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, str(child_rx), str(child_tx), _VIDEO_DIR],
                pass_fds=(child_rx, child_tx),
                stdin=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        finally:
            os.close(child_rx)
            os.close(child_tx)
        self._log_thread = threading.Thread(
            target=_log_stderr, args=(self.proc.stderr, self.stderr_tail), name="tada-decoder-log", daemon=True
        )
        self._log_thread.start()
        self._tx = Connection(parent_tx, readable=False)
        self._rx = Connection(parent_rx, writable=False)
        self.calls = 0
        self.pending = False  # a submitted call whose answer was not collected yet
        try:
            if not self._rx.poll(_START_TIMEOUT_S):
                raise RuntimeError("the decoder process did not start in time")
            status, self.pid = self._rx.recv()
        except (EOFError, OSError, RuntimeError) as exc:
            self.kill()
            self._log_thread.join(timeout=1.0)  # the last lines it printed
            said = " | ".join(self.stderr_tail) or "it printed nothing"
            raise RuntimeError(f"could not start the video decoder process ({exc}): {said}") from None

    def alive(self) -> bool:
        return self.proc.poll() is None and not self._rx.closed

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that ignores SIGKILL
            pass
        for conn in (self._tx, self._rx):
            if not conn.closed:
                conn.close()

    def _died(self) -> VideoError:
        self.kill()
        code = self.proc.returncode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        return VideoError(
            "The video decoder crashed on this file; the file may be damaged. Please try another file.",
            "decoder_crashed",
            f"decoder process {self.proc.pid} ended with {how}",
        )

    def call(self, fn: Callable, args: tuple, kwargs: dict, timeout: float) -> Any:
        """``fn(*args, **kwargs)`` in this worker, waiting at most ``timeout`` seconds for the answer."""
        self.submit(fn, args, kwargs)
        return self.collect(timeout)

    def submit(self, fn: Callable, args: tuple, kwargs: dict) -> None:
        """Start ``fn(*args, **kwargs)`` in this worker and return at once; :meth:`collect` gets the result.

        The caller works on while the worker decodes (a timeline runs the model on one batch of
        windows while the next batch is decoded).  One call at a time: a worker leased back to its
        pool with a call still running is stopped, not reused.
        """
        if self.pending:
            raise RuntimeError("the decoder worker is still busy with a call; collect it first")
        self.calls += 1
        try:
            self._tx.send((fn, args, kwargs))
        except (OSError, ValueError):
            raise self._died() from None
        self.pending = True

    def collect(self, timeout: float) -> Any:
        """The result of the call :meth:`submit` started (its exception re-raised here)."""
        if not self.pending:
            raise RuntimeError("no decoder call is running")
        try:
            if not self._rx.poll(timeout):
                self.kill()
                raise VideoError(
                    f"Decoding took longer than {timeout:.0f} s and was stopped. The file may be damaged or too long.",
                    "timeout",
                )
            status, payload, sizes = self._rx.recv()
            buffers = []
            for n in sizes:
                buf = bytearray(n)
                if not _recv_into(self._rx, buf, timeout):
                    self.kill()
                    raise VideoError("The video decoder stopped answering.", "timeout")
                buffers.append(buf)
        except (EOFError, OSError):
            raise self._died() from None
        self.pending = False
        result = pickle.loads(payload, buffers=buffers)
        if status == "error":
            raise result
        return result


class DecoderPool:
    """Up to ``max_workers`` decoder processes; each call leases one for itself (thread-safe).

    Args:
        max_workers: processes decoding at the same time (calls beyond that wait for a free one).
        max_calls_per_worker: a worker is replaced after this many calls (bounds memory creep).
    """

    def __init__(self, max_workers: int = 2, max_calls_per_worker: int = 500) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self.max_workers = max_workers
        self.max_calls_per_worker = max_calls_per_worker
        self._idle: list[_Worker] = []
        self._slots = threading.BoundedSemaphore(max_workers)
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def lease(self) -> Iterator[_Worker]:
        """A worker for a sequence of calls by one thread (e.g. probe then read, sharing its cache)."""
        if self._closed:
            raise RuntimeError("the decoder pool is shut down")
        self._slots.acquire()
        worker: _Worker | None = None
        try:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None or not worker.alive():
                worker = _Worker()
            yield worker
        finally:
            if worker is not None:
                if worker.pending:  # left with a call running (the caller stopped early): its answer
                    worker.kill()  # would be read as the next caller's, so the worker goes
                if worker.alive() and worker.calls < self.max_calls_per_worker and not self._closed:
                    with self._lock:
                        self._idle.append(worker)
                else:
                    worker.kill()
            self._slots.release()

    def run(self, fn: Callable, *args: Any, timeout: float = 60.0, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a worker process (``fn`` must be importable by reference)."""
        with self.lease() as worker:
            return worker.call(fn, args, kwargs, timeout)

    def worker_pids(self) -> list[int]:
        """Pids of the idle workers (for tests and monitoring)."""
        with self._lock:
            return [w.proc.pid for w in self._idle if w.alive()]

    def close(self) -> None:
        """Stop every idle worker; leased ones stop when their call returns."""
        self._closed = True
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


_pool: DecoderPool | None = None
_pool_lock = threading.Lock()


def _forget_pool_after_fork() -> None:
    # A forked child (e.g. a ZeroGPU task) must not talk to its parent's workers over their shared
    # pipes, nor kill them at exit: it starts its own pool when it needs one.
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def get_pool() -> DecoderPool:
    """The process-wide decoder pool (created on first use, two workers at most)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._closed:
            _pool = DecoderPool(max_workers=max(1, min(2, os.cpu_count() or 1)))
        return _pool


def run_isolated(fn: Callable, *args: Any, timeout: float = 60.0, **kwargs: Any) -> Any:
    """Run ``fn(*args, **kwargs)`` in an isolated decoder process of the shared pool.

    Raises :class:`VideoError` ``decoder_crashed`` if the process dies and ``timeout`` if it takes
    longer than ``timeout`` seconds; exceptions raised by ``fn`` are re-raised here.
    """
    return get_pool().run(fn, *args, timeout=timeout, **kwargs)


def warm_up() -> None:
    """Start a decoder worker now (e.g. when an app starts), so the first upload does not wait for it."""
    get_pool().run(os.getpid, timeout=_START_TIMEOUT_S)


def shutdown() -> None:
    """Stop the shared pool's worker processes (also done at interpreter exit)."""
    with _pool_lock:
        if _pool is not None:
            _pool.close()


atexit.register(shutdown)
