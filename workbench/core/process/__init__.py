"""Processes: spawn in a pty, the tree, the pump that copies output to disk, the reaper,
preflight (ports, stale servers, the environment checks). Never imports `engine`, `probes` or `remote`.
"""
