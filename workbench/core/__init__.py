"""The engine: runs, readers, log store, signatures, phases, probes. Never imports Textual."""
