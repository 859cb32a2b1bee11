"""``push_to_hub`` / ``python -m tada push`` against a loopback Hub stub (no network, no mocking).

The stub answers the few endpoints ``huggingface_hub`` uses to create a repo and commit files in
"regular" upload mode (ECOSYSTEM.md §5) and keeps what it received, so the test checks the very bytes
that would reach the Hub, then loads them back as a Hub snapshot.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time

import pytest
import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from safetensors.torch import load_file
from test_hub_machinery import _official_file, _same_weights, _seed_hub_cache, family, isolated  # noqa: F401

import tada
from tada import cli, convert, hub

ARCH_VARIANT = "hubtest_net.dl"


class HubStub:
    """A loopback stand-in for the Hub's repo-creation and commit endpoints, run by uvicorn in a thread."""

    def __init__(self) -> None:
        import uvicorn

        self.created: list[dict] = []
        self.files: dict[str, dict[str, bytes]] = {}
        app = FastAPI()

        @app.post("/api/repos/create")
        async def create(request: Request):
            body = await request.json()
            self.created.append(body)
            repo = f"{body.get('organization') or 'me'}/{body['name']}" if "/" not in body["name"] else body["name"]
            return {"url": f"{self.url}/{repo}", "name": repo}

        @app.post("/api/validate-yaml")
        async def validate_yaml():
            return {"errors": [], "warnings": []}

        @app.post("/api/models/{org}/{name}/preupload/{rev}")
        async def preupload(org: str, name: str, rev: str, request: Request):
            body = await request.json()
            files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in body["files"]]
            return {"files": files}

        @app.post("/api/models/{org}/{name}/commit/{rev}")
        async def commit(org: str, name: str, rev: str, request: Request):
            received = self.files.setdefault(f"{org}/{name}", {})
            for line in (await request.body()).decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    received[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            sha = hashlib.sha1(repr(sorted(received)).encode()).hexdigest()
            return {"commitUrl": f"{self.url}/{org}/{name}/commit/{sha}", "commitOid": sha}

        @app.api_route("/{rest:path}", methods=["GET", "POST", "HEAD", "PUT"])
        async def other(rest: str):
            return JSONResponse(
                {"error": f"not in stub: {rest}"}, status_code=404, headers={"X-Error-Code": "EntryNotFound"}
            )

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
        self.sock.close()


@pytest.fixture()
def stub(monkeypatch):
    from huggingface_hub import constants

    server = HubStub()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    yield server
    server.stop()


def test_push_uploads_the_model_folder_and_it_loads_back(family, isolated, stub, monkeypatch):  # noqa: F811
    src = isolated / "official.pyth"
    sd = _official_file(src, seed=11)
    folder = convert.convert_checkpoint(src, isolated / "conv", variant=ARCH_VARIANT)

    url = hub.push_to_hub(folder, "tada-lab/hubtest", token="hf_test", endpoint=stub.url)
    assert url.startswith(f"{stub.url}/tada-lab/hubtest/commit/")
    received = stub.files["tada-lab/hubtest"]
    assert set(received) == {"model.safetensors", "config.json", "official_config.json", "README.md"}
    for name, data in received.items():
        assert data == (folder / name).read_bytes()

    # what the Hub would serve, as a Hub cache snapshot: loads back with the same weights, offline
    served = isolated / "served"
    served.mkdir()
    for name, data in received.items():
        (served / name).write_bytes(data)
    _seed_hub_cache("tada-lab/hubtest", served)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = tada.create_model("hf-hub:tada-lab/hubtest")
    assert _same_weights(model, sd) and model.pretrained_cfg.name == ARCH_VARIANT
    assert torch.equal(load_file(str(served / "model.safetensors"))["head.weight"], sd["head.weight"])


def test_push_cli_and_errors(family, isolated, stub, monkeypatch, capsys):  # noqa: F811
    src = isolated / "official.pyth"
    _official_file(src)
    folder = convert.convert_checkpoint(src, isolated / "conv")
    monkeypatch.setenv("HF_TOKEN", "hf_test")  # the stub takes any token; the endpoint comes from the fixture
    assert cli.main(["push", str(folder), "tada-lab/cli-push"]) == 0
    assert "hf-hub:tada-lab/cli-push" in capsys.readouterr().out
    assert "model.safetensors" in stub.files["tada-lab/cli-push"]

    assert cli.main(["push", str(isolated), "tada-lab/x"]) == 1  # not a model folder
    assert "not a model folder" in capsys.readouterr().err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli.main(["push", str(folder), "tada-lab/x"]) == 1
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
