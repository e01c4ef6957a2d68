"""Secrets never reach the screen or a file: tokens, keys, passwords, `--api-key` values."""

from __future__ import annotations

import re
from collections.abc import Mapping

MASK = "***"
# HF_TOKEN, *_TOKEN, *_KEY, *_SECRET, *PASSWORD*; not TOKENIZERS_PARALLELISM or KEYBOARD.
_SECRET_NAME = re.compile(
    r"(?:^|_)(?:TOKEN|KEY|SECRET)S?$|SECRET|PASSWORD|PASSWD|API_?KEY|CREDENTIALS?$", re.I
)
SECRET_FLAGS = ("--api-key", "--hf-token", "--token", "--password")


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def mask_env(env: Mapping[str, str | None]) -> dict[str, str | None]:
    return {k: (MASK if v and is_secret_name(k) else v) for k, v in env.items()}


def mask_argv(argv: list[str]) -> list[str]:
    out = list(argv)
    for i, word in enumerate(out):
        for flag in SECRET_FLAGS:
            if word == flag and i + 1 < len(out):
                out[i + 1] = MASK
            elif word.startswith(flag + "="):
                out[i] = f"{flag}={MASK}"
    return out


def secret_values(env: Mapping[str, str], argv: list[str]) -> list[str]:
    """The literal secret values present, so text can be scrubbed of them."""
    values = [v for k, v in env.items() if v and len(v) >= 4 and is_secret_name(k)]
    for i, word in enumerate(argv):
        for flag in SECRET_FLAGS:
            if word == flag and i + 1 < len(argv):
                values.append(argv[i + 1])
            elif word.startswith(flag + "="):
                values.append(word[len(flag) + 1 :])
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def scrub(text: str, values: list[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text
