"""The import decision: pure rules (docs/contract.md §3), shared by both services.

The import worker applies it to every discovered account; the policy service's
``/v1/import-preview`` shows what it would decide. One function, no I/O.
"""

from services.decision.model import CustomerView, Decision, EffectivePolicy
from services.decision.rules import decide

__all__ = ["CustomerView", "Decision", "EffectivePolicy", "decide"]
