"""The malformed-spec corpus through the command line: exit 2, one line, store unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import TRAINING, Run
from tests.conftest import snapshot
from tests.test_hostile_files import MALFORMED, MANIFEST


@pytest.fixture
def seeded(run: Run, isolated_store: Path) -> dict[str, bytes | None]:
    run("register", "ctx", "existing", str(TRAINING / "training.step.yaml"))
    return snapshot(isolated_store)


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_register_rejects_malformed_file(
    run: Run, name: str, seeded: dict[str, bytes | None], isolated_store: Path
) -> None:
    path = MALFORMED / name
    expected = MANIFEST[name]
    result = run("register", "ctx", "existing", str(path), code=2)
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert all(line.startswith("hint: ") for line in lines[1:]), result.stderr
    where = str(path)
    if expected["line"] is not None:
        where += f":{expected['line']}:{expected['column']}"
    assert lines[0].endswith(f"({where})"), (lines[0], where)
    assert snapshot(isolated_store) == seeded
