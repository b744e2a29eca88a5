"""The fault and abuse suite (``make chaos``): prove nothing is lost, doubled or leaked.

Each scenario starts real processes (``import-worker run``, ``policy-service
run``/``relay``) on a Docker-free broker (Tansu) and PostgreSQL, breaks
something on purpose, and returns figures and named checks. ``chaos.run``
prints them as a table; ``tests/chaos`` asserts the verdicts at CI size.
See ``docs/reliability.md`` for what each scenario proves.
"""
