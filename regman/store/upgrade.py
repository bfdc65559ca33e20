"""Upgrading a format-1 folder store (specs changed in place, a trash folder) to revisions.

Crash-safe by construction: each context becomes revision 1 ("upgrade") through the
ordinary commit, so a context is either upgraded (its head exists) or not; the old
files of a context are deleted only after its head exists and each old file's bytes
are found among the new objects. Each trash entry becomes two revisions (its specs
back, then removed again, so ``restore`` finds them) and is deleted after; a rerun
after a kill recognises what was done by the messages of those revisions. The
marker says format 2 only when everything is done, so the next command resumes an
interrupted upgrade. Spec files that do not parse are left where they are (doctor
reports them): nothing is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from regman.errors import InvalidNameError, RegmanError, StoreError
from regman.names import is_valid_name
from regman.store.records import FORMAT_VERSION

if TYPE_CHECKING:
    from regman.spec import StepSpecification
    from regman.store.core import Store
    from regman.store.files import FileBackend

_SEP = "@"


def upgrade_store(store: Store, version: int) -> None:
    """Bring ``store`` from ``version`` to the current format (under the store lock)."""
    from regman.store.files import FileBackend

    backend = store.backend
    if version != 1 or not isinstance(backend, FileBackend):
        raise StoreError(f"cannot upgrade a store of format {version} at {store.location}")
    with backend.store_lock():
        from regman.store.core import marker_bytes, marker_version

        raw = backend.read_marker()
        if raw is not None and marker_version(raw, "regman-store.json") >= FORMAT_VERSION:
            return  # another process finished it while we waited
        store._format_checked = True  # commits below must not re-enter the upgrade
        try:
            for context in _folders(backend, ["contexts"]):
                _upgrade_context(store, backend, context)
            for entry in sorted(_folders(backend, ["trash"]) + _files(backend, ["trash"])):
                _upgrade_trash_entry(store, backend, entry)
            backend.folder.unlink(["stats-cache.json"])
            if not backend.folder.listdir(["trash"]):
                backend.folder.remove_tree(["trash"])
            backend.write_marker(marker_bytes(FORMAT_VERSION))
        except BaseException:
            store._format_checked = False
            raise


def _folders(backend: FileBackend, parts: list[str]) -> list[str]:
    return sorted(n for n, d in backend.folder.listdir(parts) if d and not n.startswith("."))


def _files(backend: FileBackend, parts: list[str]) -> list[str]:
    return sorted(n for n, d in backend.folder.listdir(parts) if not d and not n.startswith("."))


def _old_specs(
    backend: FileBackend, parts: list[str]
) -> dict[str, tuple[StepSpecification, bytes]]:
    """The readable specs of a format-1 ``specs`` folder: step -> (spec, file bytes)."""
    from regman.specfile import load_spec_text
    from regman.yamlsafe import MAX_SPEC_BYTES

    specs = {}
    for name in _files(backend, parts):
        step = name[:-5] if name.endswith(".yaml") else ""
        if not is_valid_name(step):
            continue
        try:
            data = backend.folder.read([*parts, name], MAX_SPEC_BYTES)
            if data is not None:
                specs[step] = (load_spec_text(data, backend.folder.path([*parts, name])), data)
        except RegmanError:
            continue  # left in place; doctor reports it
    return specs


def _upgrade_context(store: Store, backend: FileBackend, context: str) -> None:
    if not is_valid_name(context):
        return
    folder = ["contexts", context]
    old = _old_specs(backend, [*folder, "specs"])
    if store.head(context) is None and not old and "context.json" not in _files(backend, folder):
        return  # not a format-1 context: a folder left by a killed write of this upgrade
    if store.head(context) is None:
        store.put_specs(
            context,
            {step: spec for step, (spec, _) in old.items()},
            command="upgrade",
            message="upgraded from format 1",
            created_at=_old_created_at(backend, [*folder, "context.json"]),
        )
    head = store.head(context)
    if head is None:
        return
    from regman.store.core import spec_hash

    for step, (_, data) in old.items():
        entry = head.steps.get(step)
        # Deleted only once its content is safe in the new layout.
        if (
            entry is not None
            and store.spec_bytes(context, step, entry)
            and (spec_hash(data) == entry.spec or store.load_spec(context, step) is not None)
        ):
            backend.folder.unlink([*folder, "specs", f"{step}.yaml"])
    backend.folder.unlink([*folder, "context.json"])
    backend.folder.unlink([*folder, ".changing"])


def _upgrade_trash_entry(store: Store, backend: FileBackend, name: str) -> None:
    parsed = _parse_trash_name(name)
    if parsed is None:
        return  # not a trash entry of regman's: left alone
    context, step = parsed
    head = store.head(context)
    done = head.last.message or "" if head else ""
    if done == f"trash entry {name} removed again":
        # a kill after the entry was upgraded, before (or while) its files went
        backend.folder.remove_tree(["trash", name])
        return
    specs = _trash_specs(backend, name, step)
    if specs is None:
        return  # unreadable: left in place; doctor reports it
    back = f"from trash entry {name}"
    if not done.startswith(back):
        live = head is not None and not head.cleared
        how = "into a live context" if live else "into a cleared context"
        created_at = None if step else _old_created_at(backend, ["trash", name, "context.json"])
        try:
            result = store.put_specs(
                context, specs, command="upgrade", message=f"{back} {how}", created_at=created_at
            )
        except InvalidNameError:
            # Its name differs only in case from a context or step registered since:
            # it cannot come back beside it. Left where it is, never lost, and never
            # in the way of the upgrade (which every command runs first).
            return
        head = store.head(context)
        done = head.last.message or "" if head and result.changed else ""
    if head is not None and done.startswith(back):
        again = f"trash entry {name} removed again"
        if done.endswith("into a cleared context"):
            store.delete_context(context, message=again)
        else:  # the live steps as they were; the others removed (restorable) again
            store.rollback(context, head.revision - 1, sorted(head.last.changes), message=again)
    backend.folder.remove_tree(["trash", name])


def _parse_trash_name(name: str) -> tuple[str, str | None] | None:
    """``<ns>@<context>`` or ``<ns>@<context>@<step>.yaml`` -> (context, step)."""
    parts = name.split(_SEP)
    if len(parts) not in (2, 3) or not parts[0].isdigit() or not is_valid_name(parts[1]):
        return None
    if len(parts) == 2:
        return parts[1], None
    step = parts[2][:-5] if parts[2].endswith(".yaml") else ""
    return (parts[1], step) if is_valid_name(step) else None


def _trash_specs(
    backend: FileBackend, name: str, step: str | None
) -> dict[str, StepSpecification] | None:
    if step is None:
        return {s: spec for s, (spec, _) in _old_specs(backend, ["trash", name, "specs"]).items()}
    from regman.specfile import load_spec_text
    from regman.yamlsafe import MAX_SPEC_BYTES

    try:
        data = backend.folder.read(["trash", name], MAX_SPEC_BYTES)
        if data is None:
            return None
        return {step: load_spec_text(data, backend.folder.path(["trash", name]))}
    except RegmanError:
        return None


def _old_created_at(backend: FileBackend, parts: list[str]) -> str | None:
    """When a format-1 context was created (its ``context.json``), if that can be read."""
    from regman.store.records import load_json_object
    from regman.store.timefmt import parse_iso

    try:
        raw = backend.folder.read(parts, 1 << 20)
        value = None if raw is None else load_json_object(raw, "context.json").get("created_at")
    except RegmanError:
        return None
    if isinstance(value, str) and len(value) < 64 and parse_iso(value) > 0:
        return value
    return None
