"""footfall's benchmarks: ``.venv/bin/python -m benchmarks.run`` (see ``benchmarks/README.md``).

Never imported by the unit suite; nothing here is a test.
"""
