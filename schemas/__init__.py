"""The event and command contract of the account-import platform, as code.

These pydantic models are the single source of truth for what travels on the
bus (docs/contract.md §2). ``python -m schemas.generate`` derives the JSON
Schemas in ``schemas/json/`` and the AsyncAPI document ``schemas/asyncapi.yaml``
from them; a test fails when the committed files drift from the models.
"""
