"""Knobs of supervision, with defaults that suit a real vLLM server."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Settings:
    stall_window: float = 120.0  # no output, no phase change, idle CPU for this long -> hung
    startup_timeout: float = 1800.0  # not ready after this long -> hung
    idle_cpu_percent: float = 5.0  # tree CPU below this counts as idle
    probe_interval: float = 1.0
    smoke: bool = True
    smoke_max_tokens: int = 8
    smoke_timeout: float = 120.0
    alive_check_delay: float = 1.0  # after the smoke request: is the server still up?
    health_interval: float = 5.0  # while serving: GET /health and /metrics this often (each is a line in the server's access log)
    frozen_grace: float = 3.0  # a tree process stopped (T) or in D this long while serving -> hung
    stop_int_timeout: float = 10.0
    stop_term_timeout: float = 5.0
    dump_timeout: float = 10.0
    pty_rows: int = 50
    pty_cols: int = 200
    tail_lines: int = 20_000
