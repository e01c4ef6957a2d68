"""vLLM Workbench: debug vLLM servers live from the terminal."""

__version__ = "0.1.0"
