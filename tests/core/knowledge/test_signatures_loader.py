"""The loader rejects malformed signature files with file, line, entry and field."""

from pathlib import Path

import pytest

from workbench.core.knowledge.signatures import load_file, load_knowledge_base
from workbench.core.tomlfile import DataFileError

GOOD = '''schema = 1
[[signature]]
id = "demo_error"
title = "Demo"
severity = "error"
patterns = ['demo failure (?P<n>\\d+)']
why = "because"
[[signature.actions]]
text = "set it to {n}"
arg_delta = { "--max-model-len" = "{n}" }
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "custom.toml"
    path.write_text(text)
    return path


def test_a_good_file_loads_and_fills_actions(tmp_path: Path) -> None:
    sigs, phases = load_file(write(tmp_path, GOOD))
    assert [s.id for s in sigs] == ["demo_error"] and phases == []
    assert sigs[0].actions[0].fill({"n": "42"}).arg_delta == {"--max-model-len": "42"}


@pytest.mark.parametrize(
    "change, key, line, words",
    [
        (('severity = "error"', 'severity = "fatal"'), "severity", 5, "severity must be one of"),
        (('why = "because"', 'why = "because"\ncolour = "red"'), "colour", 8, "unknown field 'colour'"),
        (('why = "because"\n', ''), "why", None, "missing required field 'why'"),
        (("patterns = ['demo failure (?P<n>\\d+)']", "patterns = ['demo (unclosed']"), "patterns", 6, "not a valid regex"),
        (("patterns = ['demo failure (?P<n>\\d+)']", "patterns = 'demo'"), "patterns", 6, "must be a list"),
        (('title = "Demo"', 'title = "Demo'), None, 4, "invalid TOML"),
        (('"--max-model-len"', '"max-model-len"'), "arg_delta", 10, "names flags like"),
    ],
)
def test_malformed_files_are_rejected_precisely(tmp_path: Path, change, key, line, words) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(DataFileError) as info:
        load_file(path)
    err = info.value
    assert err.path == str(path)
    assert words in err.message
    if key:
        assert err.key == key
    if line:
        assert err.line == line, str(err)
    assert "demo_error" in str(err) or key in (None, "why")


def test_a_pattern_matching_empty_lines_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="matches an empty line"):
        load_file(write(tmp_path, GOOD.replace("demo failure (?P<n>\\d+)", ".*")))


def test_user_files_add_to_the_builtins(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    kb = load_knowledge_base([tmp_path], include_user=False)
    assert "demo_error" in kb.by_id()


def test_missing_extra_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="not found"):
        load_knowledge_base([tmp_path / "nope"], include_user=False)


@pytest.mark.parametrize(
    "change, key, line, words",
    [
        (('severity = "error"', 'severity = "error"\nphase = "warmup"'), "phase", 6, "phase must be 'any' or one of"),
        (('severity = "error"', 'severity = "error"\nplatform = "tpu"'), "platform", 6, "platform must be one of"),
        (('severity = "error"', 'severity = "error"\nbenign_during = ["later"]'), "benign_during", 6, "unknown phase 'later'"),
        (('severity = "error"', 'severity = "error"\ncascade = "yes"'), "cascade", 6, "must be a bool"),
        (('id = "demo_error"', 'id = "Demo-Error"'), "id", 3, "id must match"),
        (('text = "set it to {n}"', 'text = "set it to {n}"\ncolour = "red"'), "colour", 10, "unknown field 'colour'"),
        (('arg_delta = { "--max-model-len" = "{n}" }', 'arg_delta = { "--max-model-len" = 5 }'), "arg_delta", 10, "string or true/false"),
    ],
)
def test_more_malformed_fields_are_located(tmp_path: Path, change, key, line, words) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(DataFileError) as info:
        load_file(path)
    err = info.value
    assert (err.path, err.key, err.line) == (str(path), key, line), str(err)
    assert words in err.message


def test_unknown_top_level_key_and_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataFileError) as info:
        load_file(write(tmp_path, "signatures = 1\n" + GOOD))
    assert info.value.key == "signatures" and info.value.line == 1
    twice = GOOD + GOOD.replace("schema = 1\n", "")
    with pytest.raises(DataFileError, match="duplicate signature id 'demo_error'") as info:
        load_knowledge_base([write(tmp_path, twice)], include_user=False)
    assert info.value.key == "id" and info.value.line == 12  # the second one
