"""LIST formats of ``python -m tada batch``: text lines, CSV, the SSV2 json, folders; labels -> class indices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tada.batch import Entry, ListError, read_list, resolve_labels
from tada.labels import get_labels


def test_text_lines_kinetics_mmaction_xclip_and_path_only(tmp_path: Path) -> None:
    (tmp_path / "my clip.mp4").write_bytes(b"x")
    lst = tmp_path / "val.txt"
    lst.write_text(
        "# Kinetics / MMAction2 / X-CLIP style\n"
        "abseiling/a.mp4 0\n"
        "\n"
        "air_drumming/b.mp4 air drumming\n"  # a class name with a space
        "/abs/c.mp4 5\n"
        "d.mp4\n"  # path alone
        "my clip.mp4\n"  # an existing path with a space, no label
        "e f.mp4\tAir_Drumming\n"  # tab: the path holds a space
    )
    got = read_list(lst)
    assert got == [
        Entry(str(tmp_path / "abseiling/a.mp4"), 0),
        Entry(str(tmp_path / "air_drumming/b.mp4"), "air drumming"),
        Entry("/abs/c.mp4", 5),
        Entry(str(tmp_path / "d.mp4")),
        Entry(str(tmp_path / "my clip.mp4")),
        Entry(str(tmp_path / "e f.mp4"), "Air_Drumming"),
    ]
    # relative to --root instead of the list's folder
    assert read_list(lst, root="/data/k400")[0] == Entry("/data/k400/abseiling/a.mp4", 0)
    assert resolve_labels(got, get_labels("kinetics400")) == [0, 1, 5, None, None, 1]


def test_csv_with_header(tmp_path: Path) -> None:
    lst = tmp_path / "sub" / "list.csv"
    lst.parent.mkdir()
    lst.write_text("video_path,label\nx/1.mp4,moving left\n/abs/2.mp4,3\n")
    assert read_list(lst) == [Entry(str(lst.parent / "x/1.mp4"), "moving left"), Entry("/abs/2.mp4", 3)]
    no_label = tmp_path / "paths.csv"
    no_label.write_text("filename\na.mp4\n")
    assert read_list(no_label) == [Entry(str(tmp_path / "a.mp4"))]
    bad = tmp_path / "bad.csv"
    bad.write_text("clip,label\na.mp4,1\n")
    with pytest.raises(ListError, match="no path column"):
        read_list(bad)


def test_ssv2_json_label_idx_template_and_test_list(tmp_path: Path) -> None:
    (tmp_path / "3.mp4").write_bytes(b"x")  # only an mp4 of video 3 exists
    lst = tmp_path / "something-something-v2-validation.json"
    lst.write_text(
        json.dumps(
            [
                {"id": "1", "label_idx": 7},
                {
                    "id": "2",
                    "label": "putting a cup on a surface",
                    "template": "Putting [something] on a surface",
                    "placeholders": ["a cup"],
                },
                {"id": "3"},  # the official test list: no label
            ]
        )
    )
    got = read_list(lst)
    assert got == [
        Entry(str(tmp_path / "1.webm"), 7),
        Entry(str(tmp_path / "2.webm"), "Putting something on a surface"),
        Entry(str(tmp_path / "3.mp4")),
    ]
    names = get_labels("ssv2")
    resolved = resolve_labels(got, names)
    assert resolved[0] == 7 and names[resolved[1]] == "Putting something on a surface" and resolved[2] is None


def test_folder_every_video_sorted(tmp_path: Path) -> None:
    for name in ("b/2.webm", "a/1.mp4", "a/notes.txt", ".hidden/3.mp4", "c.MKV"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [Path(e.path).relative_to(tmp_path).as_posix() for e in read_list(tmp_path)] == [
        "a/1.mp4",
        "b/2.webm",
        "c.MKV",
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ListError, match="no video"):
        read_list(empty)


def test_unknown_labels_are_an_error_with_a_hint(tmp_path: Path) -> None:
    entries = [Entry("a.mp4", "moving lef"), Entry("b.mp4", 11), Entry("c.mp4", "growing")]
    with pytest.raises(ListError) as err:
        resolve_labels(entries, get_labels("motion"))
    text = str(err.value)
    assert "'moving lef' (did you mean 'moving left'?)" in text and "11 (index outside 0..10)" in text
    with pytest.raises(ListError, match="does not exist"):
        read_list(tmp_path / "missing.txt")
