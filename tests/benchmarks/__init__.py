"""Benchmarks of the served bot on the real stack (`python -m tests.benchmarks`, `make bench`).

Not part of `make test`: pytest ignores this folder (see `addopts` in pyproject.toml). The stack is the
one the scenario tests use (tests/conftest.py): `mlflow server` on sqlite, `redis-server`, the Slack test
server and `review-bot serve`, all on 127.0.0.1.
"""
