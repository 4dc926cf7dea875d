"""Benchmarks of routee-viber-async: ``python -m benchmarks`` (``make bench``).

Figures, never assertions: the SDK against a hand-written aiohttp loop, both sending to the same
loopback server running in a separate process (``benchmarks._server``). See ``RESULTS.md``.
"""
