"""How errors are worded inside the records of a log, beyond "Traceback ... Name: message".

- pydantic: `ValidationError: 1 validation error for ModelConfig` is only a header; the
  error is on the next lines (an optional field name, then `Value error, ...` or
  `Input should be ... [type=..., input_value=0, ...]`).
- an exception logged at WARNING: `Failed to import from vllm._C with ImportError('...')`.
- a cascade that quotes the real error: `Worker failed with error '...'`.
- a value the run itself supplied (an environment variable, a flag) named in an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# "1 validation error for ModelConfig", "2 validation errors for VllmConfig"
VALIDATION_HEADER = r"\b\d+ validation errors? for [A-Za-z_]\w*"
# the detail line pydantic prints under its header
VALIDATION_DETAIL = r"\[type=[a-z_]+(?:,|\])"
# an exception's repr inside a record: "with ImportError('...')", ": OSError(\"...\")"
WARNING_EXCEPTION = r"\b(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception)\((?:'|\")"

_HEADER_RX = re.compile(r"(?P<count>\d+) validation errors? for (?P<model>[A-Za-z_]\w*)")
_DETAIL_RX = re.compile(
    r"^\s*(?:Value error, |Assertion failed, )?(?P<text>.*?)\s*"
    r"\[type=(?P<type>[a-z_]+)(?:, input_value=(?P<value>.*?))?(?:, input_type=\w+)?\]\s*$"
)
_FIELD_RX = re.compile(r"^\s*(?P<field>[A-Za-z_][\w.\[\]-]*)\s*$")
_REPR_RX = re.compile(
    r"(?P<name>(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception))\((?P<q>['\"])(?P<text>.*?)(?P=q)[,)]"
)
_QUOTED_LITERAL = re.compile(r"'([^'\s][^']{0,80})'")

# a validation detail belongs to the header at most this many lines above it
DETAIL_REACH = 4


@dataclass
class ValidationDetail:
    model: str  # the pydantic model ("ModelConfig")
    field: str  # the field named on the line above, or ""
    text: str  # the message without pydantic's [type=...] tail
    value: str | None  # input_value, when it is a plain value

    @property
    def title(self) -> str:
        where = f"{self.model}.{self.field}" if self.field else self.model
        shown = f" (input_value={self.value})" if self.value is not None else ""
        return f"{where}: {self.text}{shown}"


def validation_model(message: str) -> str | None:
    found = _HEADER_RX.search(message)
    return found.group("model") if found else None


def validation_detail(model: str, message: str, above: str | None) -> ValidationDetail | None:
    found = _DETAIL_RX.match(message)
    if found is None:
        return None
    field = ""
    if above is not None:
        name = _FIELD_RX.match(above)
        if name is not None and not _HEADER_RX.search(above):
            field = name.group("field")
    value = found.group("value")
    if value is not None and (value.startswith("ArgsKwargs(") or len(value) > 80):
        value = None  # the whole argument set: says nothing about the field
    return ValidationDetail(model, field, found.group("text").rstrip(" ."), value)


def warning_exception(message: str) -> tuple[str, str] | None:
    """(exception name, its message) of an exception repr inside a record."""
    found = _REPR_RX.search(message)
    if found is None:
        return None
    return found.group("name").rsplit(".", 1)[-1], found.group("text")


def candidate_values(text: str, value: str | None) -> list[str]:
    """Values in an error message that the run may have supplied."""
    out: list[str] = []
    if value is not None:
        out.append(value.strip("'\""))
    out.extend(m.group(1) for m in _QUOTED_LITERAL.finditer(text))
    return [v for v in dict.fromkeys(out) if v]


def name_run_values(values: Sequence[str], env: dict[str, str] | None, argv: Sequence[str] | None) -> list[str]:
    """"'0.00001' is the value of VLLM_CPU_KVCACHE_SPACE in this run", for each value the run's
    own environment or command line supplied."""
    notes: list[str] = []
    for value in values:
        for name, v in sorted((env or {}).items()):
            if v == value and (name.startswith(("VLLM_", "CUDA_", "ASCEND_", "HF_", "PYTORCH_"))):
                notes.append(f"'{value}' is the value of {name} in this run")
        for flag in _flags_with_value(argv or [], value):
            notes.append(f"'{value}' is the value of {flag} in this run")
    return notes


def _flags_with_value(argv: Sequence[str], value: str) -> list[str]:
    flags: list[str] = []
    for i, arg in enumerate(argv):
        if arg.startswith("--") and "=" in arg:
            name, _, v = arg.partition("=")
            if v == value:
                flags.append(name)
        elif arg.startswith("-") and i + 1 < len(argv) and argv[i + 1] == value:
            flags.append(arg)
    return flags
