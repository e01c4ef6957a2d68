"""The Textual TUI: one face of the engine. It holds no state the engine does not have and reaches
the engine only through `workbench.core.engine.facade`; nothing outside `ui` imports it but the CLI.
"""
