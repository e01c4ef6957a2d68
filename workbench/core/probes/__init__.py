"""Looking at a live server from outside: HTTP readiness and smoke, stack dumps, profiles, GPU
memory, the environment report. Never imports `engine`.
"""
