"""Faces of the engine that are not the TUI: the headless printer, the replay and matrix runner,
the pairing face. They use `core`; `core` never imports them.
"""
