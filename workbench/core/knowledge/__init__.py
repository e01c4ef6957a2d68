"""What vLLM prints and what it means: signatures, the matcher, the recogniser, phases, verdicts,
offline analyze, environment checks, run comparison. Never imports `process` or `engine`.
"""
