"""A stand-in for `vllm serve`: prints what vLLM prints, serves the OpenAI endpoints.

It never imports the engine or reads the signature files — it is written from what vLLM
prints, so recognising it proves something.
"""
