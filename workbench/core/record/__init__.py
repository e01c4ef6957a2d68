"""What is written down: sessions and their events, past sessions, bundles, recipes, debug
variables. Never imports `engine` or `process`.
"""
