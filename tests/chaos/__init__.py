"""The fault and abuse suite at CI size (``pytest -m chaos tests/chaos``); see ``chaos/``."""
