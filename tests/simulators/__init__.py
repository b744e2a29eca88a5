"""Simulators of the vendors' REST APIs the handlers call, for tests and the dev stack.

One aiohttp application per vendor (``ConnectWiseSim``, ``AutotaskSim``,
``HaloSim``, ``ITGlueSim``, ``HuduSim``, ``GraphSim``), built from the vendors'
public documentation, sharing :mod:`.base` (recording, credentials, rolling-window
rate limits, faults, latency, admin routes under ``/_sim/``). Never point a test
at a vendor's real service: use these. ``python -m tests.simulators`` serves them
all with the demo data (:mod:`.demo`).
"""

from .autotask import AutotaskSim
from .base import VendorSim
from .connectwise import ConnectWiseSim
from .faults import Fault
from .graph import GraphSim
from .halo import HaloSim
from .hudu import HuduSim
from .itglue import ITGlueSim
from .limits import RateLimit
from .recording import RecordedRequest
from .serve import MOUNTS, ServedSimulators, serve_all

__all__ = [
    "MOUNTS",
    "AutotaskSim",
    "ConnectWiseSim",
    "Fault",
    "GraphSim",
    "HaloSim",
    "HuduSim",
    "ITGlueSim",
    "RateLimit",
    "RecordedRequest",
    "ServedSimulators",
    "VendorSim",
    "serve_all",
]
