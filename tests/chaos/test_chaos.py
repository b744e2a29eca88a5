"""Every scenario of ``chaos/`` at CI size; each must pass (``docs/reliability.md``).

Not in the default ``testpaths``: run with ``pytest -m chaos tests/chaos`` (or
``make chaos-ci``, which runs the same scenarios and prints their table). A failure
that is the Tansu broker's would be marked ``xfail(strict=True)`` here, naming its
minimal reproduction; none is needed today.
"""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.lab import Lab
from chaos.report import failures, text_table
from chaos.run import SCENARIOS, run_one_sync

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """One broker and PostgreSQL for the module (scenarios that break them start their own)."""
    with Lab(Path(tempfile.mkdtemp(prefix="chaos-"))) as started:
        yield started


@pytest.mark.parametrize("key", sorted(SCENARIOS))
def test_scenario_passes_at_ci_size(key: str, lab: Lab) -> None:
    result = run_one_sync(lab, key, "ci")
    print(text_table([result]))
    assert result.passed, f"{failures([result])}\nlogs: {lab.workdir}"
