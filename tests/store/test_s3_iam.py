"""The IAM policies in examples/s3/ are complete and minimal for what regman sends.

regman's commands run in-process (``CliRunner``) against the real S3 test server (SeaweedFS,
tests/s3server.py), in three phases, each on a new machine (an empty local cache):

- ``write``: the commands that change a store without purging, under the read-write
  policy less ``s3:DeleteObject`` (the README: a role without it can do everything else);
- ``purge``: ``remove --purge``, ``clear --purge``, ``trash empty``, ``doctor --repair``
  (with leftovers to remove), under the read-write policy;
- ``read``: every read command, under the read-only policy.

SeaweedFS enforces no IAM policy, so the test does: a hook on every S3 client regman
creates evaluates each request against the phase's policy before it is sent (the action its
operation needs, the object's or the bucket's ARN, ``s3:prefix`` for a listing; only what
the two policies use: Allow statements, ``StringLike``) and refuses it with AccessDenied,
as S3 would, when no statement allows it. Which operations each command sent is read from
the backend's own count (``S3Backend.requests``, by botocore operation name) and mapped to
IAM actions by ``OPERATION_ACTIONS``; an operation missing from that table fails the test.

A reader's listing that finds the shared summary (``cache/summary.json``) behind the heads
tries to bring it up to date, best effort; the read-only policy leaves that out on purpose,
so the read phase starts without a summary, and the test checks that this write, refused,
is the only request the read-only policy refuses and changes nothing.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from regman.cli import app
from regman.store.core import record_key
from tests.conftest import EXAMPLES, make_spec
from tests.s3server import S3Server, make_client

POLICIES = EXAMPLES / "s3"
READ_WRITE = POLICIES / "iam-policy-readwrite.json"
READ_ONLY = POLICIES / "iam-policy-readonly.json"
README = EXAMPLES.parent / "README.md"
TRAINING = EXAMPLES / "training_pipeline"
PRODUCTION = EXAMPLES / "environments" / "production"

# Each S3 operation regman sends -> the IAM action that authorizes it (the S3 API reference,
# "Permissions" of each operation): HEAD needs s3:GetObject; conditional writes (If-None-Match,
# If-Match) are PutObject and need only s3:PutObject; a conditional delete (If-Match) needs
# s3:DeleteObject (and s3:GetObject, granted anyway); DeleteObjects needs s3:DeleteObject for
# each key. A new operation must be added here, with its action, before this test passes.
OPERATION_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "ListObjectsV2": "s3:ListBucket",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
}
SETUP_ONLY = {"CreateBucket"}  # the test server's bucket (tests/s3server.py); never regman
PURGING = {"remove --purge", "clear --purge", "trash empty", "doctor --repair"}


def actions_of(operations: set[str]) -> set[str]:
    """The IAM actions for botocore operation names; any other name fails the test."""
    for op in sorted(operations):
        if op in SETUP_ONLY:
            pytest.fail(f"regman sent {op}, which only the test setup may send")
        if op not in OPERATION_ACTIONS:
            pytest.fail(f"regman sent {op}: add it to OPERATION_ACTIONS with its IAM action")
    return {OPERATION_ACTIONS[op] for op in operations}


# -- the policies and a small evaluator of them ------------------------------------------------
def load_policy(path: Path, bucket: str = "BUCKET", prefix: str = "PREFIX") -> dict[str, Any]:
    text = path.read_text().replace("BUCKET", bucket).replace("PREFIX", prefix)
    policy: dict[str, Any] = json.loads(text)
    return policy


def listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def policy_actions(policy: dict[str, Any]) -> set[str]:
    return {a for s in policy["Statement"] for a in listed(s["Action"])}


def without(policy: dict[str, Any], action: str) -> dict[str, Any]:
    statements = []
    for s in policy["Statement"]:
        kept = [a for a in listed(s["Action"]) if a != action]
        if kept:
            statements.append({**s, "Action": kept})
    return {**policy, "Statement": statements}


def like(pattern: str, value: str) -> bool:
    """IAM's StringLike: ``*`` any run of characters (``/`` included), ``?`` one."""
    regex = "".join({"*": ".*", "?": "."}.get(c, re.escape(c)) for c in pattern)
    return re.fullmatch(regex, value, re.S) is not None


@dataclass(frozen=True)
class Request:
    operation: str
    action: str
    resource: str  # an ARN
    prefix: str | None = None  # s3:prefix, for a listing

    def __str__(self) -> str:
        where = self.resource + (f" (s3:prefix {self.prefix!r})" if self.prefix is not None else "")
        return f"{self.operation}: {self.action} on {where}"


def allowing(policy: dict[str, Any], request: Request) -> str | None:
    """The Sid of the first statement allowing the request, else None (denied)."""
    for s in policy["Statement"]:
        assert set(s) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, s
        assert s["Effect"] == "Allow", s  # the evaluator knows no Deny
        if request.action not in listed(s["Action"]):
            continue
        if not any(like(r, request.resource) for r in listed(s["Resource"])):
            continue
        condition = s.get("Condition", {})
        assert set(condition) <= {"StringLike"}, condition
        keys = condition.get("StringLike", {})
        assert set(keys) <= {"s3:prefix"}, keys
        if "s3:prefix" in keys and (
            request.prefix is None
            or not any(like(p, request.prefix) for p in listed(keys["s3:prefix"]))
        ):
            continue  # a request without the key fails a condition on it
        return str(s["Sid"])
    return None


# -- running commands under a policy -----------------------------------------------------------
@dataclass
class Phase:
    name: str
    policy: dict[str, Any]
    sent: dict[str, set[str]] = field(default_factory=dict)  # command -> operations sent
    checked: list[tuple[Request, str | None]] = field(default_factory=list)
    unlistable: list[Request] = field(default_factory=list)

    @property
    def operations(self) -> set[str]:
        return set().union(*self.sent.values())

    @property
    def denied(self) -> list[Request]:
        return [r for r, sid in self.checked if sid is None]


class Recorder:
    """Hooks every S3 client regman makes, and knows every S3 backend it opens."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.phase: Phase | None = None
        self.backends: list[Any] = []

    def install(self, mp: pytest.MonkeyPatch, server: S3Server) -> None:
        """The server's environment, and the hooks into what regman opens."""
        import regman.store.s3 as s3

        for name, value in server.env().items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        make_client, init = s3._make_client, s3.S3Backend.__init__

        def hooked_client() -> Any:
            client = make_client()
            client.meta.events.register("before-parameter-build.s3", self.check)
            return client

        def tracked_init(backend: Any, *args: Any, **kw: Any) -> None:
            init(backend, *args, **kw)
            self.backends.append(backend)

        mp.setattr(s3, "_make_client", hooked_client)
        mp.setattr(s3.S3Backend, "__init__", tracked_init)

    def requests(self, op: str, params: dict[str, Any]) -> Iterator[Request]:
        bucket = params.get("Bucket", "")
        action = OPERATION_ACTIONS[op]
        if op == "ListObjectsV2":
            yield Request(op, action, f"arn:aws:s3:::{bucket}", params.get("Prefix"))
        elif op == "DeleteObjects":
            for item in params["Delete"]["Objects"]:
                yield Request(op, action, f"arn:aws:s3:::{bucket}/{item['Key']}")
        else:
            yield Request(op, action, f"arn:aws:s3:::{bucket}/{params['Key']}")

    def check(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """Refuse, as S3 would, what the phase's policy does not allow."""
        phase, op = self.phase, model.name
        if phase is None or op not in OPERATION_ACTIONS:
            return  # test setup; or an unknown operation, which actions_of() fails on
        for request in self.requests(op, params):
            sid = allowing(phase.policy, request)
            phase.checked.append((request, sid))
            if sid is None:
                from botocore.exceptions import ClientError

                error = {"Code": "AccessDenied", "Message": f"the policy does not allow {request}"}
                raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}, op)
            if op in ("GetObject", "HeadObject"):
                # For an object that is not there S3 answers 404 only to a caller allowed to
                # list it (s3:ListBucket, s3:prefix the key), else 403; regman needs the 404.
                bucket_arn = request.resource.split("/", 1)[0]
                key = request.resource.split("/", 1)[1]
                if allowing(phase.policy, Request(op, "s3:ListBucket", bucket_arn, key)) is None:
                    phase.unlistable.append(request)

    def sent(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for backend in self.backends:
            total.update(backend.requests)
        return total

    def run(self, url: str, *args: str, code: int = 0) -> Result:
        assert self.phase is not None
        before = self.sent()
        result = CliRunner().invoke(app, ["--store", url, *args])
        assert result.exit_code == code, (
            f"{self.phase.name}: regman {' '.join(args)}: exit {result.exit_code}\n"
            f"{result.stdout}\n{result.stderr}\n{result.exception!r}\n"
            f"denied: {[str(r) for r in self.phase.denied]}"
        )
        after = self.sent()
        words = args[:2] if args[0] in ("contexts", "trash") else args[:1]
        name = " ".join([*words, *(a for a in args if a.startswith("--") and a != "--yes")])
        self.phase.sent.setdefault(name, set()).update(op for op in after if after[op] > before[op])
        return result


@dataclass
class Scenario:
    bucket: str
    prefix: str
    read_write: dict[str, Any]
    read_only: dict[str, Any]
    phases: dict[str, Phase]
    listed: list[str]  # the read-only listing, its cache refresh refused


@pytest.fixture(scope="module")
def scenario(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    import regman.store.s3 as s3
    from regman.store import S3Store

    work = tmp_path_factory.mktemp("iam")
    prefix = f"iam-{uuid.uuid4().hex[:10]}/regman"
    url = s3_server.url(prefix)
    read_write = load_policy(READ_WRITE, s3_server.bucket, prefix)
    read_only = load_policy(READ_ONLY, s3_server.bucket, prefix)
    phases = {
        "write": Phase("write", without(read_write, "s3:DeleteObject")),
        "purge": Phase("purge", read_write),
        "read": Phase("read", read_only),
    }
    recorder = Recorder(s3_server.bucket)

    def setup_store() -> S3Store:  # the test's own access: no policy, no recording
        return S3Store(url, client=make_client(s3_server), cache_dir=str(work / "setup"))

    def enter(name: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
        recorder.phase = phases[name]
        monkeypatch.setenv("XDG_CACHE_HOME", str(work / f"cache-{name}"))  # a new machine
        return lambda *args, code=0: recorder.run(url, *args, code=code)

    with pytest.MonkeyPatch.context() as mp:
        recorder.install(mp, s3_server)
        mp.setattr(s3, "DEFAULT_LEFTOVER_GRACE", 0.0)  # doctor --repair removes leftovers now

        run = enter("write", mp)
        run("register", "prod", "training", str(TRAINING / "training.step.yaml"))
        run("register", "prod", "packaging", str(TRAINING / "packaging.step.yaml"), "-m", "pkg")
        run("rollback", "prod", "--to", "1", "--yes")
        run("import", "prod", str(TRAINING))
        run("contexts", "create", "dev")
        run("promote", "prod", "dev", "--yes")
        run("apply", "staging", str(PRODUCTION), "--yes")
        run("apply", "scratch", str(PRODUCTION), "--yes")
        run("remove", "dev", "payload")
        run("restore", "dev", "payload")
        run("clear", "staging", "--yes")
        run("restore", "staging")
        run("clear", "staging", "--yes")
        run("remove", "dev", "registration")

        # What interrupted writers leave, for doctor --repair: a spec object no revision
        # refers to, and the newest revision's record missing (only in the head).
        store = setup_store()
        store.backend.create_object(f"prod/specs/training/{'0' * 32}.yaml", b"name: leftover\n")
        store.backend.delete_object(record_key("prod", store.revision("prod")))

        run = enter("purge", mp)
        run("remove", "dev", "packaging", "--purge", "--yes")
        run("clear", "scratch", "--purge", "--yes")
        run("trash", "empty", "--yes")  # staging, and dev's removed registration
        run("doctor", "--repair")

        # The summary behind the heads (here: none, as in a store written before summaries,
        # or by writers that stopped before updating it): the readers' listings rebuild it.
        summary = f"{prefix}/cache/summary.json"
        make_client(s3_server).delete_object(Bucket=s3_server.bucket, Key=summary)

        run = enter("read", mp)
        run("contexts", "list")
        listed = [c["name"] for c in json.loads(run("contexts", "list", "--json").stdout)]
        run("contexts", "show", "prod")
        run("stats")
        run("stats", "--json")
        run("info")
        run("show", "prod", "training")
        run("show", "prod@1", "training")
        run("history", "prod")
        run("history", "prod", "training")
        run("diff", "prod", "dev", code=1)  # they differ: dev lost two steps
        run("resolve", "prod")
        run("explain", "prod", "training", "input_path")
        run("export", "prod", str(work / "export"))
        run("plan", "prod", str(TRAINING))
        run("trash", "list")
        run("doctor")
        recorder.phase = None
    return Scenario(s3_server.bucket, prefix, read_write, read_only, phases, listed)


# -- the policies ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [READ_WRITE, READ_ONLY], ids=lambda p: p.name)
def test_the_policies_are_valid_iam_documents(path: Path) -> None:
    policy = load_policy(path)
    assert policy["Version"] == "2012-10-17"
    assert set(policy) == {"Version", "Statement"}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and statement["Sid"]
        assert all(a.startswith("s3:") and "*" not in a for a in listed(statement["Action"]))
        resources = listed(statement["Resource"])
        if listed(statement["Action"]) == ["s3:ListBucket"]:
            assert resources == ["arn:aws:s3:::BUCKET"]
            prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
            # not a bare "PREFIX" too: it would list siblings such as PREFIX-old/
            assert listed(prefixes) == ["PREFIX/*"]
        else:
            assert resources == ["arn:aws:s3:::BUCKET/PREFIX/*"], "objects of the store only"
            assert "Condition" not in statement


def test_the_read_only_policy_writes_nothing() -> None:
    actions = policy_actions(load_policy(READ_ONLY))
    assert actions == {"s3:ListBucket", "s3:GetObject"}
    assert not any(a.startswith(("s3:Put", "s3:Delete")) for a in actions)
    assert policy_actions(load_policy(READ_WRITE)) == actions | {"s3:PutObject", "s3:DeleteObject"}


# -- complete ----------------------------------------------------------------------------------
def test_every_operation_sent_has_an_iam_action(scenario: Scenario) -> None:
    for phase in scenario.phases.values():
        actions_of(phase.operations)
        # the hook saw every operation the backends counted, and nothing else
        assert {r.operation for r, sid in phase.checked if sid} == phase.operations, phase.name


def test_write_commands_need_only_the_read_write_policy(scenario: Scenario) -> None:
    write, purge = scenario.phases["write"], scenario.phases["purge"]
    assert write.denied == [] and purge.denied == []
    used = actions_of(write.operations | purge.operations)
    assert used <= policy_actions(scenario.read_write)


def test_read_commands_need_only_the_read_only_policy(scenario: Scenario) -> None:
    read = scenario.phases["read"]
    assert actions_of(read.operations) <= policy_actions(scenario.read_only)
    # Refused, and only that: the readers' best-effort rebuild of the shared summary.
    summary = f"arn:aws:s3:::{scenario.bucket}/{scenario.prefix}/cache/summary.json"
    assert read.denied, "the read phase was meant to try to rebuild the summary"
    assert {(r.operation, r.resource) for r in read.denied} == {("PutObject", summary)}
    assert sorted(scenario.listed) == ["dev", "prod"]  # and the listing is right


def test_only_purge_and_repair_need_delete(scenario: Scenario) -> None:
    write, purge = scenario.phases["write"], scenario.phases["purge"]
    assert "s3:DeleteObject" not in actions_of(write.operations)  # ran without it
    deleting = {c for c, ops in purge.sent.items() if "s3:DeleteObject" in actions_of(ops)}
    assert deleting == PURGING
    assert "HeadObject" in purge.sent["doctor --repair"]  # it removed the leftover


def test_a_missing_object_would_answer_404(scenario: Scenario) -> None:
    """Every key read is one the policy lets its reader list, so S3 answers 404 (not 403) when
    it is missing, as regman expects of a new context's head (s3-tests'
    test_head_object_404_with_policy_prefix: S3 evaluates s3:prefix as the key)."""
    for phase in scenario.phases.values():
        assert phase.unlistable == [], phase.name


@pytest.mark.parametrize(
    ("command", "policy", "missing"),
    [
        (("register", "ctx", "pack", str(TRAINING / "packaging.step.yaml")), READ_ONLY, ""),
        (("clear", "ctx", "--purge", "--yes"), READ_WRITE, "s3:DeleteObject"),
    ],
    ids=["register-read-only", "purge-without-delete"],
)
def test_a_missing_permission_is_refused_and_named(
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: tuple[str, ...],
    policy: Path,
    missing: str,
) -> None:
    """The evaluator bites: a command its policy does not cover fails, exit 3, naming what
    is missing (the README's "access denied (naming the permission)")."""
    from regman.store import S3Store

    prefix = f"iam-{uuid.uuid4().hex[:10]}/denied"
    url = s3_server.url(prefix)
    store = S3Store(url, client=make_client(s3_server), cache_dir=str(tmp_path / "setup"))
    store.put_spec("ctx", "training", make_spec())
    recorder = Recorder(s3_server.bucket)
    recorder.install(monkeypatch, s3_server)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    granted = without(load_policy(policy, s3_server.bucket, prefix), missing)
    recorder.phase = Phase("denied", granted)
    result = recorder.run(url, *command, code=3)
    (denied,) = recorder.phase.denied
    assert denied.action == ("s3:PutObject" if policy == READ_ONLY else missing)
    assert "access denied" in result.stderr and f"need {denied.action} on" in result.stderr


# -- minimal -----------------------------------------------------------------------------------
def test_every_action_and_statement_of_the_policies_is_used(scenario: Scenario) -> None:
    write, purge, read = (scenario.phases[p] for p in ("write", "purge", "read"))
    assert actions_of(write.operations | purge.operations) == policy_actions(scenario.read_write)
    assert actions_of(read.operations) == policy_actions(scenario.read_only)
    for phases, policy in ((read,), scenario.read_only), ((write, purge), scenario.read_write):
        used = {sid for phase in phases for _, sid in phase.checked}
        assert used >= {s["Sid"] for s in policy["Statement"]}


# -- the README --------------------------------------------------------------------------------
def test_the_readme_shows_the_read_write_policy() -> None:
    text = README.read_text()
    section = text[text.index("## Sharing a store with your team") :]
    section = section[: section.index("\n## ", 5)]
    (block,) = re.findall(r"```json\n(.*?)```", section, re.S)
    assert json.loads(block) == load_policy(READ_WRITE)
    assert "examples/s3/iam-policy-readwrite.json" in section
    assert "examples/s3/iam-policy-readonly.json" in section
