"""One exception hierarchy: the app and the CLI decide what to show by type (tada.errors)."""

from __future__ import annotations

import pickle

import pytest

from app.errors import AppError, user_message
from tada import errors
from tada.cli import CliError


@pytest.mark.parametrize(
    "exc",
    [
        errors.VideoError("This file has no video stream.", code="no_video_stream"),
        errors.ModelNotFoundError("No model named 'x'. Did you mean 'y'?"),
        errors.WeightsUnavailableError("Run python -m tada convert FILE."),
        errors.ConversionError("Wrong variant."),
        errors.TextTooLongError("Too long."),
        errors.OutOfVocabularyError("Unknown word."),
        errors.OpenVocabularyUnavailableError("No text side."),
        AppError("Pick a model."),
        CliError("no variant matches 'z'"),
    ],
)
def test_user_errors_show_their_own_message(exc: Exception) -> None:
    assert errors.is_user_error(exc) and isinstance(exc, errors.TadaError)
    assert user_message(exc) == str(exc)


def test_other_errors_never_reach_the_user_as_text() -> None:
    for exc in (errors.CheckpointError("bad pickle at 0x1"), RuntimeError("inference tensors ...")):
        assert not errors.is_user_error(exc)
        assert "details are in the server log" in user_message(exc)
    assert user_message(errors.Cancelled()) == "Stopped."


def test_builtin_bases_are_kept_and_video_errors_cross_processes() -> None:
    assert isinstance(errors.ModelNotFoundError("m"), KeyError)
    assert str(errors.ModelNotFoundError("readable")) == "readable"  # KeyError would quote it
    assert isinstance(errors.ConversionError("c"), ValueError)
    assert isinstance(errors.UnsafeCheckpointError("u"), errors.CheckpointError)
    err = pickle.loads(pickle.dumps(errors.VideoError("cut off", code="truncated", detail="moov")))
    assert (type(err), err.code, err.detail, str(err)) == (errors.VideoError, "truncated", "moov", "cut off")
