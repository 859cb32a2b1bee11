"""Bounded work per request (issue #20 items 4 and 5): class phrases, quoted input, model and checkpoint sizes.

Every case is a real path through the library or the app's service: real model folders, real checkpoint
files, a real job stopped mid-encoding.  Times are measured against the full run, never asserted tightly.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import tada
from app.errors import MAX_MESSAGE_CHARS, user_message
from app.jobs import run_cancellable
from app.service import Service, parse_class_names
from tada import cli, limits, text
from tada._builder import check_build_args
from tada._model_folder import read_weights
from tada._overrides import parse_overrides
from tada._registry import model_entrypoint
from tada.convert import convert_checkpoint
from tada.errors import (
    CheckpointTooLargeError,
    ConversionError,
    ModelConfigError,
    ModelNotFoundError,
    OutOfVocabularyError,
    TextTooLongError,
    TooManyPhrasesError,
    UserError,
    WeightsUnavailableError,
    quote,
)
from tada.motion import generate_clip
from tada.motion.media import write_mp4

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

REPO = Path(__file__).resolve().parents[1]
MOTION_DIR = REPO / "assets" / "models" / "tadaconvnextv2_motion"
ILA_TINY = "ila_motion.tiny_8f"
# Words of the bundled tiny ILA's vocabulary (its motion class names): distinct phrases made of them.
WORDS = "no motion moving left right up down rotating clockwise anticlockwise growing shrinking bouncing".split()


def _phrases(n: int) -> list[str]:
    out = [f"{a} {b} {c}" for a in WORDS for b in WORDS for c in WORDS]
    return out[:n]


# --- item 4: phrases, quoting ---------------------------------------------------------------------------


def test_quote_cuts_long_input_and_keeps_short_input() -> None:
    assert quote("ila_b16") == "'ila_b16'"
    assert quote([1, 2]) == "[1, 2]"
    long = quote("x" * 10_000)
    assert len(long) < 120 and long.endswith("…(10000 chars)")
    assert "\n" not in quote("a\nb" * 100)  # never breaks a one-line message


def test_too_many_or_too_long_phrases_are_refused_before_tokenising() -> None:
    pasted = "\n".join(f"phrase number {i}" for i in range(200_000))  # ~3.8 MB in the text box
    t0 = time.perf_counter()
    with pytest.raises(TooManyPhrasesError) as err:
        parse_class_names(pasted)
    took = time.perf_counter() - t0
    print(f"200,000 phrases refused in {took:.3f} s")
    message = user_message(err.value)
    assert "200,000" in message and str(limits.MAX_CLASS_PHRASES) in message and len(message) < 300
    assert parse_class_names(_phrases(limits.MAX_CLASS_PHRASES)) is not None  # the bound itself is allowed

    with pytest.raises(TextTooLongError) as err:
        text.class_texts(["a dog", "word " * 2000])
    assert len(str(err.value)) < 300 and "10000 chars" in str(err.value)

    model = tada.create_model(ILA_TINY)
    with pytest.raises(TooManyPhrasesError):
        model.set_class_names(_phrases(limits.MAX_CLASS_PHRASES + 1))
    with pytest.raises(TooManyPhrasesError):
        model(torch.zeros(1, 8, 3, 32, 32), class_names=_phrases(limits.MAX_CLASS_PHRASES + 1))


def test_out_of_vocabulary_and_unknown_names_quote_little() -> None:
    model = tada.create_model(ILA_TINY)
    with pytest.raises(OutOfVocabularyError) as err:
        model.set_class_names([f"a purple elephant number {i} " + "y" * 250 for i in range(400)])
    assert len(str(err.value)) < 1500 and "and 395 more" in str(err.value)

    with pytest.raises(ModelNotFoundError) as err:
        tada.create_model("x" * 10_000)
    assert len(str(err.value)) < 300 and "10000 chars" in str(err.value)
    with pytest.raises(WeightsUnavailableError) as err:
        tada.create_model("hf-hub:" + "y" * 10_000)
    assert len(str(err.value)) < 300 and "10000 chars" in str(err.value)
    with pytest.raises(ConversionError) as err:
        parse_overrides(["num_classes=" + "9" * 10_000])
    assert len(str(err.value)) < 300

    class Wordy(UserError):
        pass

    shown = user_message(Wordy("z" * 219_000))  # a message that quotes without the helper
    assert len(shown) < MAX_MESSAGE_CHARS + 100 and "219,000" in shown


def test_chunked_encoding_gives_the_same_features() -> None:
    model = tada.create_model(ILA_TINY)
    tokens = model.remap_tokens(_phrases(70))
    with torch.no_grad():
        whole = model.encode_text(tokens)
        chunked = text.encode_in_chunks(model.encode_text, tokens, chunk=8)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def motion_clip(tmp_path_factory) -> Path:
    clip = generate_clip(3, "moving left", num_frames=16, size=64, distractors=False, noise=False)
    return write_mp4(clip, tmp_path_factory.mktemp("clips") / "left.mp4", fps=8, scale=1)


def test_stop_ends_text_encoding_and_frees_the_model(motion_clip: Path, monkeypatch) -> None:
    """A large-but-allowed phrase list, stopped after a few chunks: the model lock is free long before the
    encoding would have ended, and the work really stopped (no chunk after the stop)."""
    service = Service(device="cpu")
    loaded = service.get_model(ILA_TINY)
    phrases = _phrases(limits.MAX_CLASS_PHRASES)
    monkeypatch.setattr(text, "ENCODE_CHUNK", 4)
    chunks, delay = [], 0.04  # 125 chunks of 4: ~5 s for the whole list
    encode = loaded.model.encode_text

    def slow_encode(tokens: torch.Tensor) -> torch.Tensor:
        chunks.append(time.perf_counter())
        time.sleep(delay)
        return encode(tokens)

    monkeypatch.setattr(loaded.model, "encode_text", slow_encode)
    full_run = len(phrases) / 4 * delay
    job = run_cancellable(lambda p: service.analyse(str(motion_clip), ILA_TINY, class_names=phrases, progress=p))
    t_start = time.perf_counter()
    for _ in job:  # the job polls every 0.25 s
        if len(chunks) >= 3 or time.perf_counter() - t_start > 60:
            break
    assert len(chunks) >= 3, "the encoding never started"
    t_stop = time.perf_counter()
    job.close()  # what Gradio does on Stop
    acquired = loaded.lock.acquire(timeout=full_run * 4)
    freed_after = time.perf_counter() - t_stop
    try:
        assert acquired, "the model lock was never released"
    finally:
        if acquired:
            loaded.lock.release()
    print(f"model lock free {freed_after:.2f} s after Stop (full encoding: {full_run:.1f} s, {len(chunks)} chunks)")
    assert freed_after < full_run / 2
    n = len(chunks)
    time.sleep(3 * delay)
    assert len(chunks) == n < len(phrases) / 4, "encoding went on after Stop"
    assert not [t for t in threading.enumerate() if t.name == "tada-job" and t.is_alive()]
    # The model still works afterwards (nothing half-cached): a small list scores normally.
    monkeypatch.setattr(loaded.model, "encode_text", encode)
    analysis = service.analyse(str(motion_clip), ILA_TINY, class_names=["moving left", "moving right"])
    assert analysis.labels == ["moving left", "moving right"]


# --- item 5: sizes checked before building or reading --------------------------------------------------


@pytest.mark.parametrize("name", tada.list_models())
def test_every_registered_variant_lies_inside_the_bounds(name: str) -> None:
    cfg = tada.get_pretrained_cfg(name)
    args = {"num_classes": cfg.num_classes, **cfg.model_kwargs}
    limits.check_model_args(cfg.architecture, args)
    with torch.device("meta"):
        size = limits.model_bytes(model_entrypoint(cfg.architecture)(**args))
    limits.check_model_bytes(cfg.architecture, size)
    assert size < limits.MAX_MODEL_BYTES / 1.5  # room to spare, not a bound tuned to the largest model


def _folder(tmp_path: Path, **changes) -> Path:
    out = tmp_path / f"model{len(list(tmp_path.iterdir()))}"
    shutil.copytree(MOTION_DIR, out)
    config = json.loads((out / "config.json").read_text())
    for key, value in changes.items():
        (config if key == "num_classes" else config["model_kwargs"])[key] = value
    (out / "config.json").write_text(json.dumps(config))
    return out


@pytest.mark.parametrize(
    "changes, needles",
    [
        ({"depths": [1, 1, 10**6, 1]}, ["depths", "between 0 and 128"]),
        ({"num_classes": 10**7}, ["num_classes=10000000", "100,000"]),
        ({"num_classes": "11"}, ["num_classes must be a whole number"]),
        ({"dims": [24, 48, 96, 16368], "depths": [1, 1, 2, 100]}, ["GiB", "TADA_MAX_MODEL_BYTES"]),
        ({"dims": [24, 48, 96, 100]}, ["cannot build", "route_head_dim"]),
    ],
)
def test_local_dir_config_is_checked_before_building(tmp_path: Path, changes, needles) -> None:
    folder = _folder(tmp_path, **changes)
    t0 = time.perf_counter()
    with pytest.raises(ModelConfigError) as err:
        tada.create_model(f"local-dir:{folder}")
    print(f"{changes}: refused in {time.perf_counter() - t0:.2f} s")
    message = user_message(err.value)
    assert all(n in message for n in needles), message
    assert len(message) < 600


def test_hf_hub_and_overrides_go_through_the_same_checks(tmp_path: Path, monkeypatch) -> None:
    folder = _folder(tmp_path, num_classes=10**7)
    monkeypatch.setattr(tada.hub, "download_model_dir", lambda repo: folder)
    with pytest.raises(ModelConfigError, match="num_classes"):
        tada.create_model("hf-hub:someone/crafted")
    with pytest.raises(ModelConfigError, match="num_classes"):
        tada.create_model("tadaconvnextv2_motion.tiny_8f", num_classes=10**7)
    # The size cap applies to what is not a registered variant; a registered one is trusted as it is.
    monkeypatch.setattr(limits, "MAX_MODEL_BYTES", 1_000_000)
    with pytest.raises(ModelConfigError, match="GiB"):
        tada.create_model("tadaconvnextv2_motion.tiny_8f", num_classes=12)
    assert tada.create_model("tadaconvnextv2_motion.tiny_8f") is not None
    builder = model_entrypoint("tadaconvnextv2_motion")
    with pytest.raises(ModelConfigError, match="layers in all"):
        check_build_args("tadaconvnextv2_motion", builder, {"depths": [100, 100, 100, 1], "num_classes": 11})


def _crafted_checkpoint(tmp_path: Path, rows: int) -> Path:
    """The TAdaFormer reference fixture with its head replaced by an empty (rows, 0) tensor (a tiny file)."""
    src = REPO.parent / "shared" / "reference" / "tadaconv" / "fixtures" / "tadaformer_mini.pyth"
    obj = torch.load(src, map_location="cpu", weights_only=True)
    state = dict(obj["model_state"])
    state["head.out.weight"] = torch.empty(rows, 0)
    state["head.out.bias"] = torch.empty(0)
    path = tmp_path / f"crafted_{rows}.pyth"
    torch.save({**obj, "model_state": state}, path)
    return path


def test_crafted_checkpoint_shapes_are_refused(tmp_path: Path, capsys, reference_dir) -> None:
    big = _crafted_checkpoint(tmp_path, 10**7)
    assert big.stat().st_size < 5 * 10**6  # a small file that implies a 10^7-class head
    with pytest.raises(CheckpointTooLargeError, match="head.out.weight"):
        convert_checkpoint(big, tmp_path / "out", overrides=["route_head_dim=8"])
    assert cli.main(["convert", str(big), str(tmp_path / "out"), "--override", "route_head_dim=8"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "1,048,576" in err and len(err) < 400
    assert not (tmp_path / "out").exists()
    # Under the per-dimension bound, the class count it implies is still refused before building.
    with pytest.raises(ConversionError, match="num_classes=200000"):
        convert_checkpoint(_crafted_checkpoint(tmp_path, 200_000), tmp_path / "out", overrides=["route_head_dim=8"])


def test_safetensors_shapes_are_checked_from_the_header(tmp_path: Path, monkeypatch) -> None:
    folder = _folder(tmp_path)
    state = read_weights(folder)
    bad = dict(state, extra=torch.empty(0, 5_000_000))
    save_file(bad, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointTooLargeError, match="extra"):
        tada.create_model(f"local-dir:{folder}")
    save_file(state, str(folder / "model.safetensors"))
    monkeypatch.setattr(limits, "MAX_MODEL_BYTES", 1000)  # the folder's weights are ~3.6 MB
    with pytest.raises(CheckpointTooLargeError, match="GiB of weights"):
        read_weights(folder)
