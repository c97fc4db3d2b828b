"""Side-by-side benchmark of delivery_auth and other client-credentials auth libraries.

Run ``python -m benchmarks`` (``--quick`` for a smoke run, ``--help`` for options). It
starts a small token and resource server on 127.0.0.1 in a child process, runs every
scenario in one run and writes a Markdown table, a JSON file and a PNG chart. Every
timing is reported as a ratio to a *floor*: an auth object that only sets one
precomputed ``Authorization`` header, measured in the same run.

This package is not part of the test suite and not installed with delivery_auth.
"""
