"""What a model folder says before a ten-minute load: pure file reading, never the tensors.

Reads config.json (and the `text_config` of VL models), generation_config.json,
tokenizer_config.json, model.safetensors.index.json and the safetensors headers only (an 8-byte
little-endian length, then that many bytes of JSON), so a 100 GB checkpoint is checked in well
under a second. Each finding carries why and the action, like the knowledge base's.
"""

from __future__ import annotations

import difflib
import json
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.cmdline import flag_value, has_flag
from workbench.core.knowledge.signatures import Action

INDEX_FILE = "model.safetensors.index.json"
HEADER_LIMIT = 100 * 1024 * 1024  # safetensors refuses larger headers; so do we
MTP_CONFIG_KEY = re.compile(r"(?i)(nextn|mtp)")
MTP_WEIGHT = re.compile(r"(?i)(^|\.)(mtp|nextn)")
LAYER_INDEX = re.compile(r"(?:^|\.)layers\.(\d+)\.")
FP8_METHODS = {"fp8", "fbgemm_fp8", "ptpc_fp8", "modelopt"}


@dataclass
class ModelFinding:
    id: str
    title: str
    severity: str  # error (will not serve), warning (will serve oddly), info
    why: str
    actions: list[Action] = field(default_factory=list)
    file: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "severity": self.severity, "why": self.why,
                "file": self.file, "actions": [a.to_dict() for a in self.actions]}


@dataclass
class ServeOptions:
    """What of the serve command matters to the folder's checks."""

    tp: int | None = None
    max_model_len: int | None = None
    trust_remote_code: bool = False
    chat_template: bool = False
    speculative: str = ""
    platform: str = "any"  # any, cuda, ascend, cpu

    @classmethod
    def from_argv(cls, argv: list[str], platform: str = "any", tp: int | None = None) -> ServeOptions:
        tp_text = flag_value(argv, "--tensor-parallel-size") or flag_value(argv, "-tp")
        return cls(
            tp=tp if tp is not None else (int(tp_text) if tp_text and tp_text.isdigit() else None),
            max_model_len=parse_length(flag_value(argv, "--max-model-len")),
            trust_remote_code=has_flag(argv, "--trust-remote-code"),
            chat_template=has_flag(argv, "--chat-template"),
            speculative=flag_value(argv, "--speculative-config") or "",
            platform=platform,
        )


@dataclass
class ModelReport:
    model_dir: str
    facts: dict[str, Any] = field(default_factory=dict)
    findings: list[ModelFinding] = field(default_factory=list)
    registry: dict[str, Any] = field(default_factory=dict)

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.findings.append(ModelFinding(*args, **kwargs))

    def to_dict(self) -> dict[str, Any]:
        return {"model_dir": self.model_dir, "facts": self.facts, "registry": self.registry,
                "findings": [f.to_dict() for f in self.findings]}


class FolderError(ValueError):
    """A file of the folder that cannot be read as what it claims to be: the one-line why."""


def parse_length(text: str | None) -> int | None:
    """`4096`, `32k`, `1m` (vLLM accepts the suffixes), or None."""
    if not text:
        return None
    found = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)\s*", text)
    if not found:
        return None
    scale = {"": 1, "k": 1000, "m": 1000_000}[found.group(2).lower()]
    return int(found.group(1)) * scale


def read_json(path: Path) -> dict[str, Any] | None:
    """The file's object, None when absent; FolderError (file and line) when broken."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise FolderError(f"{path}: cannot read ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FolderError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise FolderError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    """(header, bytes the tensors need after it); FolderError when the file is cut short."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise FolderError(f"{path.name}: {size} bytes, shorter than the 8-byte header length")
        (length,) = struct.unpack("<Q", head)
        if length > HEADER_LIMIT or 8 + length > size:
            raise FolderError(f"{path.name}: header claims {length} bytes but the file has {size}")
        try:
            header = json.loads(handle.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FolderError(f"{path.name}: the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise FolderError(f"{path.name}: the header is not a JSON object")
    end = 0
    for name, entry in header.items():
        if name != "__metadata__" and isinstance(entry, dict):
            offsets = entry.get("data_offsets") or [0, 0]
            end = max(end, int(offsets[1]))
    missing = 8 + length + end - size
    return header, missing


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The language model's part: VL configs nest it under text_config (or llm_config)."""
    for key in ("text_config", "llm_config", "language_config"):
        nested = config.get(key)
        if isinstance(nested, dict):
            return {**config, **nested}
    return config


def check_folder(model_dir: Path, options: ServeOptions, supported_archs: Iterable[str] | None = None,
                 remote_code_archs: Iterable[str] = ()) -> ModelReport:
    """Every check of the folder; `supported_archs` None means the registry was not asked."""
    report = ModelReport(str(model_dir))
    try:
        config = read_json(model_dir / "config.json")
    except FolderError as exc:
        report.add("config_unreadable", "config.json cannot be read", "error", str(exc),
                   [Action("Fix or re-download config.json.")], "config.json")
        return report
    if config is None:
        report.add("no_config", "No config.json in the folder", "error",
                   "vLLM reads the architecture and sizes from config.json; this is not a Hugging Face model folder.",
                   [Action("Point the command at the folder that holds config.json (a snapshot, not its parent).")])
        return report
    text = text_config(config)
    report.facts.update({k: text.get(k) for k in (
        "architectures", "model_type", "num_attention_heads", "num_key_value_heads", "num_hidden_layers",
        "max_position_embeddings", "rope_scaling", "torch_dtype") if text.get(k) is not None})
    _check_architecture(report, config, options, supported_archs, set(remote_code_archs))
    _check_tp(report, text, options.tp)
    _check_length(report, text, options.max_model_len, model_dir)
    _check_quantization(report, config, options.platform)
    names = _check_weights(report, model_dir)
    _check_mtp(report, text, names, options.speculative)
    _check_tokenizer(report, model_dir, options.chat_template)
    return report


def _check_architecture(report: ModelReport, config: dict[str, Any], options: ServeOptions,
                        supported: Iterable[str] | None, remote_code_archs: set[str]) -> None:
    archs = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    custom = isinstance(config.get("auto_map"), dict)
    if not archs:
        report.add("no_architectures", "config.json names no architecture", "error",
                   "vLLM picks the model class from `architectures` in config.json; without it the load fails.",
                   [Action("Add the model class, e.g. \"architectures\": [\"LlamaForCausalLM\"], to config.json.")],
                   "config.json")
        return
    if supported is None:
        return
    known = set(supported)
    for arch in archs:
        if arch in known:
            continue
        if custom or arch in remote_code_archs:
            if not options.trust_remote_code:
                report.add("needs_trust_remote_code", f"{arch} is not in vLLM's registry: needs --trust-remote-code",
                           "error", "config.json maps the class to code in the folder (auto_map); vLLM runs it "
                           "only with --trust-remote-code (through its Transformers backend).",
                           [Action("Add --trust-remote-code (read the folder's Python files first).",
                                   arg_delta={"--trust-remote-code": True})], "config.json")
            continue
        close = difflib.get_close_matches(arch, sorted(known), n=3, cutoff=0.6)
        hint = f" Nearest known: {', '.join(close)}." if close else ""
        report.add("unknown_architecture", f"Architecture {arch} is not supported by this vLLM", "error",
                   f"The target environment's ModelRegistry has no {arch}, and config.json maps no custom code.{hint}",
                   [Action("Check the spelling of `architectures` in config.json, or upgrade vLLM / vllm-ascend "
                           "to a release that supports the model.")], "config.json")
    if custom and all(a in known for a in archs):
        report.facts["trust_remote_code"] = "not needed: vLLM has a native implementation"


def _check_tp(report: ModelReport, text: dict[str, Any], tp: int | None) -> None:
    heads = text.get("num_attention_heads")
    kv = text.get("num_key_value_heads") or heads
    if not tp or not isinstance(heads, int) or not isinstance(kv, int) or tp <= 1:
        return
    if heads % tp:
        report.add("tp_heads_indivisible", f"{heads} attention heads do not divide by TP {tp}", "error",
                   "Tensor parallelism splits the attention heads evenly over the ranks; vLLM refuses the "
                   "split at startup.",
                   [Action(f"Use a tensor-parallel size that divides {heads}: "
                           f"{', '.join(str(n) for n in range(1, heads + 1) if heads % n == 0 and n <= 16)}.")],
                   "config.json")
        return
    if tp > kv:
        if tp % kv:
            report.add("tp_kv_heads_indivisible", f"TP {tp} is not a multiple of {kv} KV heads", "error",
                       "With more ranks than KV heads each head is replicated, which needs TP to be a multiple "
                       "of the KV-head count.",
                       [Action(f"Use a TP that divides or is a multiple of {kv}.")], "config.json")
        else:
            report.add("kv_heads_replicated", f"TP {tp} over {kv} KV heads: each KV head is replicated {tp // kv}×",
                       "warning", "Ranks beyond the KV-head count hold copies of the same KV heads: more KV-cache "
                       "memory per token, and kernels that assume one head per rank (QK norm over the heads, "
                       "e.g. '128 vs 64' shape mismatches) can fail.",
                       [Action(f"Prefer TP {kv} (with pipeline or data parallel for more devices)",
                               arg_delta={"--tensor-parallel-size": str(kv)})], "config.json")
    elif kv % tp:
        report.add("tp_kv_heads_indivisible", f"{kv} KV heads do not divide by TP {tp}", "error",
                   "Tensor parallelism splits the KV heads evenly over the ranks.",
                   [Action(f"Use a TP that divides {kv}.")], "config.json")


def _check_length(report: ModelReport, text: dict[str, Any], wanted: int | None, model_dir: Path) -> None:
    positions = text.get("max_position_embeddings")
    if not isinstance(positions, int):
        return
    scaling = text.get("rope_scaling") if isinstance(text.get("rope_scaling"), dict) else None
    limit = positions
    if scaling:
        factor = scaling.get("factor")
        original = scaling.get("original_max_position_embeddings")
        kind = scaling.get("rope_type") or scaling.get("type")
        if isinstance(factor, (int, float)) and kind not in (None, "default", "mrope") and factor > 1:
            limit = max(positions, int((original or positions) * factor))
    report.facts["max_len_supported"] = limit
    if wanted is not None and wanted > limit:
        via = f" (max_position_embeddings {positions} with rope scaling {scaling})" if limit != positions else ""
        report.add("max_model_len_over_positions", f"--max-model-len {wanted} is over the model's {limit}{via}",
                   "error", f"vLLM refuses a max model length over what config.json derives ({limit}); "
                   "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 forces it, and outputs past the trained length degrade.",
                   [Action(f"Serve with --max-model-len {limit}", arg_delta={"--max-model-len": str(limit)}),
                    Action("Or add rope scaling (e.g. yarn) to config.json if the model card supports it.")],
                   "config.json")
    gen = _quiet_json(report, model_dir / "generation_config.json")
    if gen and isinstance(gen.get("max_length"), int):
        report.facts["generation_max_length"] = gen["max_length"]


def _check_quantization(report: ModelReport, config: dict[str, Any], platform: str) -> None:
    quant = config.get("quantization_config")
    if not isinstance(quant, dict):
        return
    method = str(quant.get("quant_method", "")).lower()
    fmt = str(quant.get("fmt", "") or quant.get("format", "")).lower()
    report.facts["quantization"] = method or "?"
    fp8 = method in FP8_METHODS or "fp8" in fmt or "float8" in json.dumps(quant).lower()
    if fp8 and platform == "ascend":
        report.add("fp8_on_ascend", "FP8 checkpoint on Ascend", "error",
                   "Ascend A2/A3 NPUs have no FP8 matmul; vllm-ascend cannot load this quantisation as it is.",
                   [Action("Dequantise the checkpoint to bf16 (the model's fp8-to-bf16 cast script), "
                           "or use a W8A8 checkpoint made for Ascend with --quantization ascend.")],
                   "config.json")


def _check_weights(report: ModelReport, model_dir: Path) -> list[str]:
    """Tensor names from the index and the headers; missing and truncated shards."""
    try:
        index = read_json(model_dir / INDEX_FILE)
    except FolderError as exc:
        report.add("index_unreadable", f"{INDEX_FILE} cannot be read", "error", str(exc),
                   [Action("Re-download the index file.")], INDEX_FILE)
        index = None
    names: list[str] = []
    shards = sorted(p.name for p in model_dir.glob("*.safetensors"))
    if index is not None:
        weight_map = index.get("weight_map") if isinstance(index.get("weight_map"), dict) else {}
        names.extend(weight_map)
        wanted = sorted(set(str(v) for v in weight_map.values()))
        missing = [name for name in wanted if not (model_dir / name).is_file()]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            report.add("missing_shard", f"{len(missing)} of {len(wanted)} indexed shard(s) missing", "error",
                       f"The index maps weights to {shown}, which the folder does not hold: the load stops "
                       "after minutes with a missing-file or missing-key error.",
                       [Action("Finish the download (huggingface-cli download resumes), then check again.")],
                       INDEX_FILE)
        shards = sorted(set(shards) | {w for w in wanted if w not in missing})
    report.facts["shards"] = len(shards)
    for name in shards:
        path = model_dir / name
        try:
            header, short = safetensors_header(path)
        except FolderError as exc:
            _truncated(report, name, str(exc))
            continue
        except OSError as exc:
            _truncated(report, name, f"{name}: cannot read ({exc.strerror})")
            continue
        if short > 0:
            _truncated(report, name, f"{name}: the header's tensors need {short} more bytes than the file has")
        if index is None:
            names.extend(k for k in header if k != "__metadata__")
    return names


def _truncated(report: ModelReport, name: str, why: str) -> None:
    report.add("truncated_shard", f"Shard {name} is truncated or corrupt", "error",
               why + ": an interrupted download or a full disk.",
               [Action(f"Delete {name} and download it again.")], name)


def _check_mtp(report: ModelReport, text: dict[str, Any], names: list[str], speculative: str) -> None:
    layers = text.get("num_hidden_layers")
    keys = {k: v for k, v in text.items() if MTP_CONFIG_KEY.search(k) and isinstance(v, int) and v > 0}
    in_weights = [n for n in names if MTP_WEIGHT.search(n)]
    if isinstance(layers, int):  # DeepSeek-style: the MTP layer is numbered after the last decoder layer
        in_weights += [n for n in names if (m := LAYER_INDEX.search(n)) and int(m.group(1)) >= layers]
    report.facts["mtp"] = {"config": keys, "weights": len(in_weights)}
    if keys and names and not in_weights:
        key = ", ".join(f"{k}={v}" for k, v in keys.items())
        report.add("mtp_weights_missing", "MTP layers in config.json but none in the weights", "warning",
                   f"config.json sets {key}, yet no tensor name has mtp/nextn or a layer past the last decoder "
                   "layer: the checkpoint was saved without its MTP head, so MTP speculative decoding has "
                   "nothing to load (or silently has no effect).",
                   [Action("Use a checkpoint that ships the MTP weights, or serve without --speculative-config.")],
                   "config.json")
    elif "mtp" in speculative.lower() and not keys:
        report.add("mtp_not_in_config", "--speculative-config asks for MTP; config.json has no MTP layers", "warning",
                   "The model defines no nextn/MTP layers, so MTP speculation has no effect.",
                   [Action("Drop --speculative-config or use the MTP-capable checkpoint.")], "config.json")


def _check_tokenizer(report: ModelReport, model_dir: Path, template_given: bool) -> None:
    tok = _quiet_json(report, model_dir / "tokenizer_config.json")
    has_template = bool(tok and tok.get("chat_template")) or any(
        (model_dir / name).is_file() for name in ("chat_template.jinja", "chat_template.json"))
    report.facts["chat_template"] = has_template or template_given
    if not has_template and not template_given:
        report.add("no_chat_template", "No chat template in the folder", "warning",
                   "Without a chat template /v1/chat/completions fails (transformers ≥ 4.44 has no default) "
                   "or the prompt is formatted oddly: odd output from a healthy server.",
                   [Action("Pass --chat-template FILE (the model card's template), or use /v1/completions.")],
                   "tokenizer_config.json")


def _quiet_json(report: ModelReport, path: Path) -> dict[str, Any] | None:
    try:
        return read_json(path)
    except FolderError as exc:
        report.add("json_unreadable", f"{path.name} cannot be read", "warning", str(exc),
                   [Action(f"Fix or re-download {path.name}.")], path.name)
        return None


def model_dir_of(argv: list[str], cwd: str | None = None) -> Path | None:
    """The local model folder a serve command names (`--model DIR` or `serve DIR`), if any."""
    candidate = flag_value(argv, "--model")
    if candidate is None and "serve" in argv[:4]:
        i = argv.index("serve")
        if i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            candidate = argv[i + 1]
    if not candidate:
        return None
    path = Path(candidate) if Path(candidate).is_absolute() else Path(cwd or ".") / candidate
    return path if (path / "config.json").is_file() else None
