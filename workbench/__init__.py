"""vLLM Workbench: debug vLLM servers live from the terminal.

Packages: `core` (the engine, in wings), `faces` (headless, replay, pairing), `cli`, `ui` (the
TUI) and `sim` (the stand-in server). docs/architecture.md draws what may import what.
"""

__version__ = "0.1.0"
