"""Client errors, summarised: one line per kind with its count and an example, e.g.
"12× 400: maximum context length is 256 tokens" or "2× 404: model gpt-4o is not served; this
server serves Qwen/Qwen2.5-0.5B-Instruct". The example comes from the log when it says why (older
vLLM logs the 404; any vLLM logs the reason at DEBUG); otherwise the note says where the reason is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from workbench.core.knowledge.records import Finding

_CONTEXT = re.compile(r"maximum context length is (\d+) tokens")
_MODEL = re.compile(r"The model `([^`]*)` does not exist")
_ALIASES = re.compile(r"Valid aliases: ([^.]+)\.")


def annotate_client_errors(findings: Iterable[Finding], served: str | None = None) -> None:
    """Fill the note of each client-error finding (in place) with its count and example."""
    found = list(findings)
    by_id = {f.id: f for f in found}
    context = by_id.get("client_context_length")
    unknown = by_id.get("client_unknown_model")
    for finding in found:
        if finding.id == "client_error_400":
            limit = _CONTEXT.search(context.line) if context is not None else None
            if limit:
                finding.note = f"{finding.count}× 400: maximum context length is {limit.group(1)} tokens"
            else:
                finding.note = (f"{finding.count}× 400: the reason is in the responses the clients got "
                                "(VLLM_LOGGING_LEVEL=DEBUG logs it)")
        elif finding.id == "client_error_404":
            finding.note = f"{finding.count}× 404: " + _unknown_model_text(unknown, served)
        elif finding.id == "client_error_4xx":
            finding.note = f"{finding.count}× 4xx: authentication, size, validation or rate limit"


def _unknown_model_text(unknown: Finding | None, served: str | None) -> str:
    model = _MODEL.search(unknown.line) if unknown is not None else None
    aliases = _ALIASES.search(unknown.line) if unknown is not None else None
    serves = served or (aliases.group(1).strip() if aliases else None)
    head = f"model {model.group(1)} is not served" if model else "a model name or path this server does not serve"
    tail = f"; this server serves {serves}" if serves else " (GET /v1/models lists the served names)"
    return head + tail
