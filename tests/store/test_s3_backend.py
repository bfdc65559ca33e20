"""The S3 backend against a real S3 server (SeaweedFS on loopback, see tests/s3server.py).

The primitives the store relies on (put-if-absent, compare-and-swap of a head, listing),
the whole store through the command line with ``--store s3://...``, errors as one line
with a hint, and the cheap-read design (requests per read).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import regman
from regman.cli import app
from regman.errors import StoreError
from regman.store import S3Store, open_store
from regman.store.s3 import S3Backend, count_requests, parse_url
from regman.store.summary import parse as parse_summary
from tests.conftest import EXAMPLES, make_spec
from tests.s3server import S3BackendFactory, S3Server, make_client

TRAINING = EXAMPLES / "training_pipeline"


# -- the server does what regman relies on -----------------------------------------------------
def test_server_honours_conditional_writes(s3_server: S3Server) -> None:
    client = make_client(s3_server)
    bucket, key = s3_server.bucket, "conditional-check/k"
    first = client.put_object(Bucket=bucket, Key=key, Body=b"1", IfNoneMatch="*")
    with pytest.raises(Exception) as exists:
        client.put_object(Bucket=bucket, Key=key, Body=b"2", IfNoneMatch="*")
    assert exists.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412  # type: ignore[attr-defined]
    second = client.put_object(Bucket=bucket, Key=key, Body=b"3", IfMatch=first["ETag"])
    with pytest.raises(Exception) as stale:
        client.put_object(Bucket=bucket, Key=key, Body=b"4", IfMatch=first["ETag"])
    assert stale.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412  # type: ignore[attr-defined]
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"3"
    with pytest.raises(Exception) as unmodified:
        client.get_object(Bucket=bucket, Key=key, IfNoneMatch=second["ETag"])
    assert unmodified.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304  # type: ignore[attr-defined]


# -- locations ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://b", "b", ""),
        ("s3://b/", "b", ""),
        ("s3://my-bucket/team/regman", "my-bucket", "team/regman"),
        ("S3://b/p/", "b", "p"),
    ],
)
def test_parse_url(url: str, bucket: str, prefix: str) -> None:
    assert parse_url(url) == (bucket, prefix)


@pytest.mark.parametrize("url", ["s3://", "s3:///p", "s3://b/../x", "s3://b/a//c", "s3://b c/p"])
def test_parse_url_refuses(url: str) -> None:
    with pytest.raises(regman.RegmanError):
        parse_url(url)


def test_open_store_opens_s3_everywhere(s3_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    url = s3_env.url()
    assert isinstance(open_store(url), S3Store)
    monkeypatch.setenv("REGMAN_HOME", url)
    assert isinstance(open_store(), S3Store)
    assert regman.RegistryManager(url).store.location == url
    regman.configure(url)
    seeded = regman.get_registry("seeded")
    assert seeded is not None
    seeded.register_specification("train", make_spec())
    assert regman.list_contexts() == ["seeded"]
    reopened = regman.RegistryManager(url).get_registry("seeded")
    assert reopened is not None
    assert reopened.list_step_names() == ["train"]


# -- the primitives ----------------------------------------------------------------------------
def test_objects_are_put_if_absent(s3_backend: S3BackendFactory) -> None:
    b = s3_backend()
    assert b.read_object("c/specs/s/x.yaml", 100) is None
    assert b.create_object("c/specs/s/x.yaml", b"one") is True
    assert b.create_object("c/specs/s/x.yaml", b"two") is False
    assert b.read_object("c/specs/s/x.yaml", 100) == b"one"
    with pytest.raises(StoreError, match="over 2 bytes"):
        s3_backend(b.location).read_object("c/specs/s/x.yaml", 2)


def test_list_and_delete(s3_backend: S3BackendFactory) -> None:
    b = s3_backend()
    for key in ("c/specs/a/1.yaml", "c/specs/b/2.yaml", "c/revisions/1.json", "cc/specs/a/1.yaml"):
        b.create_object(key, b"x")
    assert b.list_objects("c") == ["c/revisions/1.json", "c/specs/a/1.yaml", "c/specs/b/2.yaml"]
    assert b.list_objects("c/specs") == ["c/specs/a/1.yaml", "c/specs/b/2.yaml"]
    assert b.delete_object("c/revisions/1.json") is True
    assert b.delete_object("c/revisions/1.json") is False
    b.delete_prefix("c/specs")
    assert b.list_objects("c") == []
    assert b.list_objects("cc") == ["cc/specs/a/1.yaml"]
    assert b.where("c/x") == f"{b.location}/contexts/c/x"


@pytest.mark.parametrize("key", ["../x", "c/../x", "c//x", ".hidden/x", ""])
def test_refuses_odd_keys(s3_backend: S3BackendFactory, key: str) -> None:
    with pytest.raises(StoreError):
        s3_backend().create_object(key, b"x")


def test_head_compare_and_swap(s3_backend: S3BackendFactory) -> None:
    b = s3_backend(head_ttl=0)
    assert b.read_head("c", 100) is None
    assert b.head_token("c") is None
    assert b.swap_head("c", b"v1", "wrong-etag") is False
    assert b.swap_head("c", b"v1", None) is True
    assert b.swap_head("c", b"again", None) is False  # there is a head now
    data, etag1 = b.read_head("c", 100) or (b"", "")
    assert data == b"v1"
    assert b.head_token("c") == etag1
    assert b.swap_head("c", b"v2", etag1) is True
    assert b.swap_head("c", b"v3", etag1) is False  # stale: another writer moved it
    data, etag2 = b.read_head("c", 100) or (b"", "")
    assert data == b"v2" and etag2 != etag1
    assert b.list_heads() == ["c"]
    assert b.swap_head("c", None, etag1) is False
    assert b.swap_head("c", None, etag2) is True
    assert b.read_head("c", 100) is None
    assert b.list_heads() == []


def test_a_second_client_sees_a_swap(s3_backend: S3BackendFactory) -> None:
    writer, reader = s3_backend(), s3_backend(head_ttl=0)
    reader_url_backend = s3_backend(writer.location, head_ttl=0)
    assert writer.swap_head("c", b"v1", None)
    token = reader_url_backend.head_token("c")
    assert token is not None
    _, etag = writer.read_head("c", 100) or (b"", "")
    assert writer.swap_head("c", b"v2", etag)
    assert reader_url_backend.head_token("c") != token
    assert reader_url_backend.read_head("c", 100) == (b"v2", reader_url_backend.head_token("c"))
    assert reader.list_heads() == []  # another prefix: another store


def test_listing_a_store_that_is_not_there_writes_nothing(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.url()
    store = S3Store(url, cache_dir=str(tmp_path / "c"))
    assert store.list_contexts() == [] and store.all_stats() == {}
    client = make_client(s3_env)
    listed = client.list_objects_v2(Bucket=s3_env.bucket, Prefix=url.split("/", 3)[3] + "/")
    assert listed.get("KeyCount", 0) == 0


def test_marker_and_describe(s3_backend: S3BackendFactory, s3_env: S3Server) -> None:
    b = s3_backend()
    assert b.exists() is False and b.read_marker() is None
    b.write_marker(b'{"format_version": 2}\n')
    assert s3_backend(b.location).exists() is True
    facts = b.describe()
    assert facts["backend"] == "s3"
    assert facts["bucket"] == s3_env.bucket
    assert facts["prefix"] == b.prefix
    assert facts["endpoint"] == s3_env.endpoint


# -- reads are cheap ---------------------------------------------------------------------------
def test_a_held_registry_asks_s3_at_most_once_per_ttl(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.url()
    store = S3Store(url, cache_dir=str(tmp_path / "c1"), head_ttl=60)
    store.put_spec("ctx", "train", make_spec())
    manager = regman.RegistryManager(store)
    registry = manager.get_registry("ctx")
    assert registry is not None
    registry.get_specification("train")
    sent = count_requests(store.backend)  # type: ignore[arg-type]
    for _ in range(10_000):
        assert registry.get_specification("train") is not None
    assert sent() == 0


def test_a_new_process_rereads_an_unchanged_context_with_304s(
    s3_env: S3Server, tmp_path: Path
) -> None:
    url = s3_env.url()
    writer = S3Store(url, cache_dir=str(tmp_path / "w"))
    writer.put_specs("ctx", {f"s{i}": make_spec(f"T{i}") for i in range(5)})
    cache = str(tmp_path / "reader")
    first = S3Store(url, cache_dir=cache)
    registry = regman.RegistryManager(first).get_registry("ctx")
    assert registry is not None
    assert len(registry.list_specifications()) == 5
    again = S3Store(url, cache_dir=cache)
    sent = count_requests(again.backend)  # type: ignore[arg-type]
    registry = regman.RegistryManager(again).get_registry("ctx")
    assert registry is not None
    assert len(registry.list_specifications()) == 5
    backend: Any = again.backend
    # marker, head (a 304): the five specs come from the local cache, checked by hash
    assert sent() <= 3, backend.requests


def written_by_four_machines(url: str, tmp_path: Path, contexts: int) -> None:
    """``contexts`` contexts, each written by one of four writers with caches of their own."""
    for i in range(contexts):
        writer = S3Store(url, cache_dir=str(tmp_path / f"writer-{contexts}-{i % 4}"))
        writer.put_spec(f"ctx-{i:03d}", "s", make_spec(f"Type{i % 7}"))


def requests_of_a_new_machine(url: str, tmp_path: Path, name: str) -> dict[str, int]:
    """Requests of each listing command on a machine that had nothing cached, each call a
    new process (a new store: no listing reused)."""
    counts = {}
    calls: list[tuple[str, Callable[[regman.RegistryManager], object]]] = [
        ("list", lambda m: m.list_contexts()),
        ("stats", lambda m: m.get_context_stats()),
        ("types", lambda m: m.distinct_step_types()),
        ("info", lambda m: m.store.info()),
    ]
    for what, call in calls:
        store = S3Store(url, cache_dir=str(tmp_path / name))
        sent = count_requests(store.backend)  # type: ignore[arg-type]
        call(regman.RegistryManager(store))
        counts[what] = sent()
    return counts


def test_a_new_machine_lists_a_store_in_requests_that_do_not_grow_with_its_contexts(
    s3_env: S3Server, tmp_path: Path
) -> None:
    """Writers keep the summary current: no reader ever refreshed it, and a machine that
    never saw the store lists 8 or 60 contexts with the marker, one LIST, one summary GET."""
    counts = {}
    for contexts in (8, 60):
        url = s3_env.url()
        written_by_four_machines(url, tmp_path, contexts)
        counts[contexts] = requests_of_a_new_machine(url, tmp_path, f"new-{contexts}")
        fresh = S3Store(url, cache_dir=str(tmp_path / f"check-{contexts}"))
        assert len(fresh.list_contexts()) == contexts
        assert len(regman.RegistryManager(fresh).distinct_step_types()) == 7
    assert counts[8] == counts[60], counts
    assert max(counts[60].values()) <= 3, counts  # the marker, one LIST, the summary


def test_a_listing_is_reused_within_the_head_ttl_unless_this_process_wrote(
    s3_env: S3Server, tmp_path: Path
) -> None:
    url = s3_env.url()
    store = S3Store(url, cache_dir=str(tmp_path / "c"), head_ttl=60)
    store.create_context("a")
    backend: Any = store.backend
    assert store.list_contexts() == ["a"]
    sent = count_requests(backend)
    assert store.all_stats().keys() == {"a"} and store.step_types_across() == []
    assert sent() == 0
    store.create_context("b")  # its own write is seen at once
    assert store.list_contexts() == ["a", "b"]


def test_a_summary_behind_the_heads_is_brought_up_to_date_by_a_reader(
    s3_env: S3Server, tmp_path: Path
) -> None:
    """Contexts written by a version that kept no summary (or writers that gave up): the
    first reader reads those heads once and writes the summary back; the next needs none."""
    url = s3_env.url()
    written_by_four_machines(url, tmp_path, 12)
    S3Store(url, cache_dir=str(tmp_path / "x")).backend.client.delete_object(  # type: ignore[attr-defined]
        Bucket=s3_env.bucket, Key=url.split("/", 3)[3] + "/cache/summary.json"
    )
    first = requests_of_a_new_machine(url, tmp_path, "first")
    second = requests_of_a_new_machine(url, tmp_path, "second")
    assert first["list"] >= 12 and second["list"] <= 3, (first, second)


def test_concurrent_writers_of_different_contexts_keep_every_entry(
    s3_env: S3Server, tmp_path: Path
) -> None:
    """Eight writers race for the one summary object; each entry that lands is the head's,
    and a reader's numbers are right whether or not every writer's entry landed."""
    url = s3_env.url()
    S3Store(url, cache_dir=str(tmp_path / "setup")).create_context("seed")

    def write(i: int) -> None:
        store = S3Store(url, cache_dir=str(tmp_path / f"w{i}"))
        for n in range(6):
            store.put_spec(f"ctx-{i}", f"s{n}", make_spec(f"T{i}-{n}"))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))
    fresh = S3Store(url, cache_dir=str(tmp_path / "reader"))
    backend: Any = fresh.backend
    found = backend.read_summary(1 << 24)
    entries = parse_summary(found[0])
    stale = [n for n in entries if entries[n].token != backend.head_token(n)]
    stats = fresh.all_stats()
    assert {n: s["step_count"] for n, s in stats.items()} == {
        "seed": 0,
        **{f"ctx-{i}": 6 for i in range(8)},
    }
    assert len(fresh.step_types_across()) == 48
    assert stale == [] and set(entries) == set(stats), stale


# -- the whole store through the command line --------------------------------------------------
def cli(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, f"{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result


def test_round_trip_through_the_cli(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.url()
    spec = str(TRAINING / "training.step.yaml")
    other = str(TRAINING / "packaging.step.yaml")
    out = json.loads(cli("--store", url, "register", "prod", "train", spec, "--json").stdout)
    assert (out["outcome"], out["revision"]) == ("created", 1)
    cli("--store", url, "register", "prod", "train", other, "-m", "swap")
    cli("--store", url, "register", "prod", "pack", other)
    history = json.loads(cli("--store", url, "history", "prod", "--json").stdout)
    assert [h["revision"] for h in history] == [3, 2, 1]
    assert history[1]["message"] == "swap"
    assert history[1]["changes"] == {"train": "updated"}
    refused = cli("--store", url, "register", "prod", "x", spec, "--if-revision", "2", code=1)
    assert "at revision 3, not 2" in refused.stderr
    cli("--store", url, "rollback", "prod", "--to", "1", "--yes")
    at_one = cli("--store", url, "show", "prod@1", "train").stdout
    assert cli("--store", url, "show", "prod", "train").stdout == at_one
    assert at_one != cli("--store", url, "show", "prod@2", "train").stdout
    listed = json.loads(cli("--store", url, "contexts", "list", "--json").stdout)
    assert [(c["name"], c["revision"], c["step_count"]) for c in listed] == [("prod", 4, 1)]
    info = json.loads(cli("--store", url, "info", "--json").stdout)
    assert info["backend"] == "s3" and info["bucket"] == s3_env.bucket
    assert info["prefix"] == url.split("/", 3)[3] and info["endpoint"] == s3_env.endpoint
    cli("--store", url, "doctor")


# -- errors: one line, exit 3, a hint ----------------------------------------------------------
def test_no_such_bucket(s3_env: S3Server) -> None:
    result = cli("--store", "s3://no-such-bucket-here/p", "register", "c", "s",
                 str(TRAINING / "training.step.yaml"), code=3)  # fmt: skip
    assert "does not exist" in result.stderr and "aws s3 mb" in result.stderr
    assert [line.split(":")[0] for line in result.stderr.strip().splitlines()] == ["error", "hint"]


def test_unreachable_endpoint(s3_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.s3server import _free_ports

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{_free_ports(1)[0]}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = cli("--store", s3_env.url(), "contexts", "list", code=3)
    assert "cannot reach" in result.stderr and "AWS_ENDPOINT_URL_S3" in result.stderr
    assert [line.split(":")[0] for line in result.stderr.strip().splitlines()] == ["error", "hint"]


def test_no_credentials(s3_env: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    result = cli("--store", s3_env.url(), "contexts", "list", code=3)
    assert "no AWS credentials" in result.stderr and "AWS_PROFILE" in result.stderr


def test_s3_client_is_imported_only_for_an_s3_store(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, regman; m = regman.RegistryManager(sys.argv[1]); m.list_contexts(); "
        "print('botocore' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "local")], capture_output=True, text=True
    )
    assert out.stdout.strip() == "False", out.stderr


def test_backend_is_an_s3_backend(s3_backend: S3BackendFactory) -> None:
    b = s3_backend()
    assert isinstance(b, S3Backend) and b.serialises_writers is False


def test_clear_restore_and_purge_through_the_cli(s3_env: S3Server) -> None:
    url = s3_env.url()
    cli("--store", url, "register", "prod", "train", str(TRAINING / "training.step.yaml"))
    cli("--store", url, "clear", "prod", "--yes")
    assert json.loads(cli("--store", url, "contexts", "list", "--json").stdout) == []
    trash = json.loads(cli("--store", url, "trash", "list", "--json").stdout)
    assert [(t["kind"], t["context"]) for t in trash] == [("context", "prod")]
    cli("--store", url, "restore", "prod")
    listed = json.loads(cli("--store", url, "contexts", "list", "--json").stdout)
    assert [(c["name"], c["revision"], c["step_count"]) for c in listed] == [("prod", 3, 1)]
    cli("--store", url, "clear", "prod", "--purge", "--yes")
    assert json.loads(cli("--store", url, "contexts", "list", "--json").stdout) == []
    cli("--store", url, "history", "prod", code=1)
    fresh = S3Backend(url, cache_dir=None)
    assert fresh.list_objects("prod") == [] and fresh.list_heads() == []


def test_a_change_made_elsewhere_shows_once_the_ttl_passed(
    s3_env: S3Server, tmp_path: Path
) -> None:
    import time

    url = s3_env.url()
    writer = S3Store(url, cache_dir=str(tmp_path / "w"))
    writer.put_spec("ctx", "train", make_spec("Before"))
    reader = S3Store(url, cache_dir=str(tmp_path / "r"), head_ttl=1.5)
    registry = regman.RegistryManager(reader).get_registry("ctx")
    assert registry is not None
    assert registry.require_spec("train").step_type == "Before"
    writer.put_spec("ctx", "train", make_spec("After"))
    assert registry.require_spec("train").step_type == "Before"  # within the TTL: no request
    time.sleep(1.6)
    assert registry.require_spec("train").step_type == "After"


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_head_ttl_from_the_environment_is_checked(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("REGMAN_S3_HEAD_TTL", value)
    with pytest.raises(regman.RegmanError, match="REGMAN_S3_HEAD_TTL"):
        S3Store(s3_env.url())
    monkeypatch.setenv("REGMAN_S3_HEAD_TTL", "2.5")
    assert S3Store(s3_env.url()).backend.head_ttl == 2.5  # type: ignore[attr-defined]


def test_an_s3_url_never_becomes_a_local_folder(
    s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    url = "s3://no-such-bucket-here/p"
    for args in (["--store", url], []):
        monkeypatch.setenv("REGMAN_HOME", url if not args else str(tmp_path / "home"))
        result = cli(*args, "register", "ctx", "s", str(TRAINING / "training.step.yaml"), code=3)
        assert "does not exist" in result.stderr
    assert list(cwd.iterdir()) == []
    assert not any(p.name.endswith(":") for p in tmp_path.rglob("*"))
