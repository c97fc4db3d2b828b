"""Side-by-side benchmark of delivery_auth and other client-credentials auth libraries.

Run ``python -m benchmarks`` (``--quick`` for a smoke run, ``--help`` for options). It
starts a small token and resource server on 127.0.0.1 in a child process, runs every
scenario in one run and writes a Markdown report, a JSON file and a PNG chart. Every
timing is reported as a ratio to a *floor* measured in the same run: an auth object
that only sets one precomputed ``Authorization`` header (and, for a rejected token, a
hand-written minimum that fetches one token and resends once). The whole round of the
auth (request leg and response side) is timed in-process (:mod:`benchmarks.whole`), as
are object build cost and threads (:mod:`benchmarks.objects`); stampede, rotation,
recovery and throughput run over loopback (:mod:`benchmarks.scenarios`).

This package is not part of the test suite and not installed with delivery_auth.
"""
