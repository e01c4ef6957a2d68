"""Tiny model folders written file by file (no torch): config, tokenizer config, index and
safetensors shards (an 8-byte little-endian header length, the JSON header, then the bytes)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"

BASE_CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
    "num_attention_heads": 8, "num_key_value_heads": 8, "num_hidden_layers": 2,
    "max_position_embeddings": 512, "vocab_size": 128, "torch_dtype": "bfloat16",
}


def write_safetensors(path: Path, tensors: dict[str, int]) -> None:
    """Each tensor as F32 of the given element count, zeros."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, count in tensors.items():
        header[name] = {"dtype": "F32", "shape": [count], "data_offsets": [offset, offset + 4 * count]}
        offset += 4 * count
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + bytes(offset))


def layer_tensors(layers: int, extra: tuple[str, ...] = ()) -> dict[str, int]:
    names = ["model.embed_tokens.weight", "lm_head.weight", "model.norm.weight"]
    for i in range(layers):
        names += [f"model.layers.{i}.self_attn.q_proj.weight", f"model.layers.{i}.mlp.up_proj.weight"]
    return {name: 16 for name in [*names, *extra]}


def make_folder(dest: Path, config: dict[str, Any] | None = None, shards: int = 2, template: bool = True,
                extra_tensors: tuple[str, ...] = ()) -> Path:
    """A good folder: config, generation config, tokenizer config with a template, sharded weights."""
    dest.mkdir(parents=True, exist_ok=True)
    cfg = {**BASE_CONFIG, **(config or {})}
    (dest / "config.json").write_text(json.dumps(cfg, indent=2))
    (dest / "generation_config.json").write_text(json.dumps({"max_length": 512, "eos_token_id": 2}))
    tok: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "</s>"}
    if template:
        tok["chat_template"] = TEMPLATE
    (dest / "tokenizer_config.json").write_text(json.dumps(tok))
    tensors = list(layer_tensors(cfg["num_hidden_layers"], extra_tensors).items())
    weight_map: dict[str, str] = {}
    per = -(-len(tensors) // shards)
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = dict(tensors[s * per:(s + 1) * per])
        write_safetensors(dest / name, part)
        weight_map.update({k: name for k in part})
    (dest / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return dest
