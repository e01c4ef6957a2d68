"""The log path: line splitting, display text, the log store with its sparse index, Ascend plog.

Imports no other wing of core: it is the fast path and must stay self-contained.
"""
