"""Requests and wall time per command on an S3 store against a folder store, in one run.

Run from the repository root (not collected by pytest; needs ``pip install '.[test]'``)::

    python tests/benchmarks/bench_s3.py            # about a minute
    python tests/benchmarks/bench_s3.py --contexts 200

It starts the same SeaweedFS server the tests use on loopback, runs each command through
the real command line in-process (``CliRunner``; so interpreter start and imports are
left out) against ``--store s3://...`` and ``--store FOLDER``, and prints, per command,
the median wall time of a few runs and the S3 requests one run sent (retries included).
A second pass runs each S3 command from a new, empty user cache (a new machine). Last,
``contexts list`` and ``stats`` on a store of N contexts, warm and from a new machine:
the requests must not grow with N.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.s3server import start_server, stop_server  # noqa: E402

TRAINING = REPO / "examples" / "training_pipeline"
REQUESTS = [0]


def count_every_request() -> None:
    import regman.store.s3 as s3

    original = s3.S3Backend._count

    def counting(self: s3.S3Backend, operation_name: str = "?", **kw: Any) -> None:
        REQUESTS[0] += 1
        original(self, operation_name=operation_name, **kw)

    s3.S3Backend._count = counting  # type: ignore[method-assign]


def run(store: str, *args: str) -> None:
    from typer.testing import CliRunner

    from regman.cli import app

    result = CliRunner().invoke(app, ["--store", store, *args])
    if result.exit_code != 0:
        raise SystemExit(f"{args}: exit {result.exit_code}: {result.stderr or result.output}")


def measure(fn: Callable[[], None], repeat: int) -> tuple[float, int]:
    times = []
    requests = 0
    for _ in range(repeat):
        before = REQUESTS[0]
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        requests = REQUESTS[0] - before
    return statistics.median(times) * 1000, requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contexts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()

    server = start_server()
    work = tempfile.mkdtemp(prefix="regman-bench-s3-")
    try:
        os.environ.update(server.env())
        os.environ["XDG_CACHE_HOME"] = os.path.join(work, "cache")
        count_every_request()
        s3_url, folder = server.url("bench"), os.path.join(work, "folder")
        specs = sorted(TRAINING.glob("*.step.yaml"))
        for store in (s3_url, folder):
            for spec in specs:
                run(store, "register", "training", spec.name.split(".")[0], str(spec))

        counter = iter(range(10**6))
        commands: list[tuple[str, Callable[[str], None]]] = [
            (
                "register",
                lambda s: run(s, "register", "bench", f"s{next(counter)}", str(specs[0])),
            ),
            ("show", lambda s: run(s, "show", "training", "training")),
            ("contexts list", lambda s: run(s, "contexts", "list")),
            ("stats", lambda s: run(s, "stats")),
            ("stats --json", lambda s: run(s, "stats", "--json")),
            ("history --limit 20", lambda s: run(s, "history", "training", "--limit", "20")),
            ("resolve", lambda s: run(s, "resolve", "training")),
        ]
        print(f"{'command':<22}{'folder ms':>10}{'s3 ms':>9}{'requests':>10}"
              f"{'new-machine ms':>16}{'requests':>10}")  # fmt: skip
        for name, fn in commands:
            folder_ms, _ = measure(lambda fn=fn: fn(folder), options.repeat)  # type: ignore[misc]
            s3_ms, s3_requests = measure(lambda fn=fn: fn(s3_url), options.repeat)  # type: ignore[misc]

            def cold(fn: Callable[[str], None] = fn) -> None:
                shutil.rmtree(os.environ["XDG_CACHE_HOME"], ignore_errors=True)
                fn(s3_url)

            cold_ms, cold_requests = measure(cold, options.repeat)
            print(f"{name:<22}{folder_ms:>10.1f}{s3_ms:>9.1f}{s3_requests:>10}"
                  f"{cold_ms:>16.1f}{cold_requests:>10}")  # fmt: skip

        print(f"\nA store of {options.contexts} contexts:")
        many = server.url("many")
        from regman.store import S3Store

        writer = S3Store(many, cache_dir=os.path.join(work, "writer"))
        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(writer.create_context, [f"c{i:05d}" for i in range(options.contexts)]))
        print(f"  created in {time.perf_counter() - start:.1f} s")
        rows = (
            ("contexts list", ("contexts", "list")),
            ("stats --json", ("stats", "--json")),
            ("stats", ("stats",)),  # with the distinct step types, from the summary too
        )
        for name, args in rows:
            shutil.rmtree(os.environ["XDG_CACHE_HOME"], ignore_errors=True)
            first_ms, first = measure(lambda args=args: run(many, *args), 1)  # type: ignore[misc]
            warm_ms, warm = measure(lambda args=args: run(many, *args), options.repeat)  # type: ignore[misc]
            print(f"  {name:<16} first {first_ms:8.1f} ms {first:5} requests; "
                  f"again {warm_ms:8.1f} ms {warm:5} requests")  # fmt: skip
    finally:
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
