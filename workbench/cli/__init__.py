"""The command line, one module per command family; `main` dispatches. Imports `core` and the
faces; the TUI only inside the commands that open it.
"""

from workbench.cli.main import main

__all__ = ["main"]
