"""Stop really stops: a cancelled Gradio event ends the computation behind it (app.jobs + Gradio's /cancel)."""

from __future__ import annotations

import socket
import threading
import time

import gradio as gr
import pytest

from app.jobs import run_cancellable
from app.ui import guarded


def test_cancel_through_gradio_stops_the_work() -> None:
    steps: list[int] = []

    def long(text, progress=gr.Progress()):  # noqa: B008 - Gradio's way to ask for a progress tracker
        n = int(text)  # number of 20-ms steps

        def work(p):
            for i in range(n):
                p(i / n, f"step {i}")
                steps.append(i)
                time.sleep(0.02)
            return "finished"

        result = yield from run_cancellable(work, report=lambda f, m: progress(f, desc=m), idle=gr.skip())
        yield result

    with gr.Blocks(analytics_enabled=False) as demo:
        box, out, button = gr.Textbox(), gr.Textbox(), gr.Button()
        button.click(guarded("the test job")(long), box, out, api_name="long")
    demo.queue()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        from gradio_client import Client

        client = Client(demo.local_url, verbose=False)
        job = client.submit("1500", api_name="/long")  # 30 s of work: cancelled long before the end
        t0 = time.time()
        while len(steps) < 5:
            if time.time() - t0 > 120:
                pytest.fail("the job never started")
            time.sleep(0.02)
        assert job.cancel()
        # Cancellation crosses the queue and a thread: give it time on a loaded machine, then require
        # that the work has stopped for good (no new step for 1.5 s) well before it would have finished.
        deadline, stopped_at = time.time() + 60, -1
        while time.time() < deadline and len(steps) != stopped_at:
            stopped_at = len(steps)
            time.sleep(1.5)
        assert len(steps) == stopped_at < 1500, "the work went on after Stop"
        assert not [t for t in threading.enumerate() if t.name == "tada-job"]
        # The server still answers: a new run completes.
        steps.clear()
        assert client.predict("20", api_name="/long") == "finished" and len(steps) == 20
    finally:
        demo.close()
