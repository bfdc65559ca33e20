"""Helpers for command-line tests: run the app in-process and snapshot the store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from regman.cli import app
from tests.conftest import EXAMPLES, snapshot

TRAINING = EXAMPLES / "training_pipeline"


class Run:
    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, code: int | None = 0) -> Result:
        result = self.runner.invoke(app, list(args), input=input)
        if code is not None:
            assert result.exit_code == code, (
                f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
                f"\n{result.exception!r}"
            )
        return result


@pytest.fixture
def run() -> Run:
    return Run()


@pytest.fixture
def store_snapshot(isolated_store: Path) -> Callable[[], dict[str, bytes | None]]:
    return lambda: snapshot(isolated_store)
