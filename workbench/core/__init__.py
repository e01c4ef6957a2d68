"""The engine: runs, their processes, logs, recognition, probes, records and remote access.

Never imports Textual, the faces (`workbench.faces`), the CLI or the UI; import-linter checks it.
Loose modules here are the shared vocabulary every wing may use: argv edits, TOML loading, secrets.
"""
