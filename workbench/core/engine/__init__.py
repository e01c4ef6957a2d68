"""The engine proper: runs, their watcher, commands and events, the bus, settings, the facade.

May import every other wing of core; nothing in core imports it but `remote`.
"""
