"""`workbench model-check MODEL_DIR [--tp N] [-- SERVE ARGS]`: the model folder before the load."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from workbench.cli.parser import UsageError

EXIT_FINDINGS = 1  # an error finding: the server would not come up as asked


def add_model_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model-check", help="check a model folder before the load: config, shards, TP, length, template")
    p.add_argument("model_dir")
    p.add_argument("--tp", type=int, default=None, help="tensor-parallel size (default: from the serve args)")
    p.add_argument("--python", default=None,
                   help="the target environment's Python, whose vLLM registry is asked (default: the command's)")
    p.add_argument("--platform", choices=["auto", "cuda", "ascend", "cpu"], default="auto")
    p.add_argument("--no-registry", action="store_true", help="skip asking vLLM's registry (files only)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--session-dir", default=None, help="also record the report in this session directory")


def cmd_model_check(args: argparse.Namespace, serve_args: list[str]) -> int:
    from workbench.core.knowledge.modelcheck import ServeOptions, check_folder
    from workbench.core.probes.envreport import target_python
    from workbench.core.probes.registry import query_registry, target_platform

    folder = Path(args.model_dir)
    if not folder.is_dir():
        raise UsageError(f"workbench model-check: {args.model_dir}: no such directory")
    if args.tp is not None and args.tp < 1:
        raise UsageError(f"workbench model-check: --tp {args.tp}: must be 1 or more")
    registry: dict = {}
    if not args.no_registry:
        python = args.python or (target_python(serve_args) if serve_args else sys.executable)
        registry = query_registry(python)
    platform = args.platform if args.platform != "auto" else target_platform(dict(os.environ), registry)
    options = ServeOptions.from_argv(serve_args, platform=platform, tp=args.tp)
    report = check_folder(folder, options, registry.get("archs"))
    report.registry = {k: v for k, v in registry.items() if k != "archs"}
    if "archs" in registry:
        report.registry["archs"] = len(registry["archs"])
    report.facts["platform"] = platform
    result = report.to_dict()
    if args.session_dir:
        from workbench.core.record.session import write_private

        write_private(Path(args.session_dir) / "model_check.json", json.dumps(result, indent=1))
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        sys.stdout.write(report_text(result))
    return EXIT_FINDINGS if any(f["severity"] == "error" for f in result["findings"]) else 0


def report_text(result: dict) -> str:
    lines = [f"model folder: {result['model_dir']}"]
    facts = result["facts"]
    shown = ("architectures", "num_attention_heads", "num_key_value_heads", "max_len_supported", "quantization",
             "shards", "platform")
    lines.append("  " + ", ".join(f"{k} {facts[k]}" for k in shown if k in facts))
    registry = result.get("registry") or {}
    if registry.get("error"):
        lines.append(f"  registry not asked: {registry['error']}")
    elif registry:
        lines.append(f"  registry: vLLM {registry.get('vllm')} ({registry.get('archs')} architectures)")
    for f in result["findings"]:
        lines.append(f"{f['severity']:<7} {f['title']}  [{f['id']}]")
        lines.append(f"  why: {f['why']}")
        for i, action in enumerate(f["actions"], 1):
            lines.append(f"  try {i}: {action['text']}")
    if not result["findings"]:
        lines.append("no findings")
    return "\n".join(lines) + "\n"
