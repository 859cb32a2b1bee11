"""Stop really stops: a cancelled Gradio event ends the computation behind it (app.jobs + Gradio's /cancel).

The app runs in its own process, as in production: Gradio's /cancel only reaches events of the event
loop it runs on, and several apps launched one after another in one test process do not share one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from app_server import free_port

REPO = Path(__file__).resolve().parents[1]

SERVER = textwrap.dedent(
    """
    import sys, threading, time
    import gradio as gr
    from app.jobs import run_cancellable
    from app.handlers import guarded

    steps = []

    def long(text, progress=gr.Progress()):
        n = int(text)  # number of 20-ms steps

        def work(p):
            for i in range(n):
                p(i / n, f"step {i}")
                steps.append(i)
                time.sleep(0.02)
            return "finished"

        result = yield from run_cancellable(work, report=lambda f, m: progress(f, desc=m), idle=gr.skip())
        yield result

    def status():
        jobs = [t for t in threading.enumerate() if t.name == "tada-job"]
        return f"{len(steps)} {len(jobs)}"

    with gr.Blocks(analytics_enabled=False) as demo:
        box, out, button = gr.Textbox(), gr.Textbox(), gr.Button()
        button.click(guarded("the test job")(long), box, out, api_name="long")
        gr.Button().click(status, None, out, api_name="status", queue=False)
        gr.Button().click(lambda: steps.clear(), None, None, api_name="reset", queue=False)
    demo.queue().launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), quiet=True)
    """
)


@pytest.fixture
def server(tmp_path: Path):
    script = tmp_path / "jobs_app.py"
    script.write_text(SERVER)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, str(script), str(port)], cwd=REPO, env=env)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.time()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.time() - t0 > 180:
                proc.kill()
                pytest.fail("the test app did not start")
            time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_cancel_through_gradio_stops_the_work(server: str) -> None:
    from gradio_client import Client

    client = Client(server, verbose=False)

    def status() -> tuple[int, int]:
        steps, jobs = client.predict(api_name="/status").split()
        return int(steps), int(jobs)

    job = client.submit("1500", api_name="/long")  # 30 s of work: cancelled long before the end
    t0 = time.time()
    while status()[0] < 5:
        if time.time() - t0 > 120:
            pytest.fail("the job never started")
        time.sleep(0.1)
    assert job.cancel()
    # Cancellation crosses the queue and a thread: give it time on a loaded machine, then require that
    # the work has stopped for good (no new step for 1.5 s) well before it would have finished.
    deadline, stopped_at = time.time() + 60, -1
    while time.time() < deadline and status()[0] != stopped_at:
        stopped_at = status()[0]
        time.sleep(1.5)
    steps, jobs = status()
    assert steps == stopped_at < 1500, "the work went on after Stop"
    assert jobs == 0, "the worker thread is still alive"
    # The server still answers: a new run completes.
    client.predict(api_name="/reset")
    assert client.predict("20", api_name="/long") == "finished" and status() == (20, 0)
