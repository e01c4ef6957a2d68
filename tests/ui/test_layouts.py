"""Layouts are data: the shipped ones load; a bad file names its line and key; nothing launches."""

from __future__ import annotations

import pytest

from tests.helpers import workbench
from workbench.core.tomlfile import DataFileError
from workbench.ui.layouts import available_layouts, load_layout, read_layout


def test_shipped_layouts_load() -> None:
    names = set(available_layouts())
    assert {"single", "compare", "grid"} <= names
    assert load_layout("compare").panes == 2
    assert load_layout("grid").arrangement == "grid" and "tree" in load_layout("grid").panels


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ('panes = 2\ncolour = "red"\n', 2, "colour"),
        ('description = "x"\npanes = "two"\n', 2, "panes"),
        ("panes = 9\n", 1, "panes"),
        ('arrangement = "spiral"\n', 1, "arrangement"),
        ('panes = 1\npanels = ["log", "gpu"]\n', 2, "panels"),
        ("panes = = 1\n", 1, None),
    ],
)
def test_bad_layout_names_line_and_key(tmp_path, text: str, line: int, key: str | None) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(DataFileError) as caught:
        read_layout(path)
    assert caught.value.line == line
    assert caught.value.key == key


def test_unknown_layout_lists_the_known_ones() -> None:
    with pytest.raises(DataFileError, match="known: .*compare"):
        load_layout("nope")


def test_cli_refuses_a_bad_layout_before_launching(tmp_path) -> None:
    marker = tmp_path / "launched"
    bad = tmp_path / "bad.toml"
    bad.write_text("panes = 0\n")
    result = workbench("--layout", str(bad), "--", "touch", str(marker))
    assert result.returncode != 0
    assert "bad.toml:1" in result.stderr and "[panes]" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()
