"""DependencyResolver: wire each step's dependencies to other steps' outputs, as a DAG.

How a dependency is wired (the rules a pipeline author can rely on):

1. Candidates are outputs of *other* given steps whose type and data type are compatible
   (:mod:`regman.scoring`); each gets a score in [0, 1]. Only candidates scoring at or
   above the threshold qualify; type alone never does.
2. Job types order the qualifying candidates before scores do. A step with a job type
   (``job_type`` or a ``_training``/``_calibration``/... name suffix) prefers providers
   of its own job type, then providers without one, and takes a provider of another job
   type only when neither qualifies. A step without a job type whose dependency asks for
   one job type in its name or keywords (``training_data``) only puts providers of
   another explicit job type last.
3. Then the higher score wins. Equal scores go to a provider already upstream of the
   consumer, else to the first provider and output by name.
4. The wiring is acyclic: edges are committed strongest first, and a dependency whose
   best candidate would close a cycle takes its best one that does not (the report says
   so). Everything is ordered by names, so registration order never matters.

Speed: outputs are grouped by their evidence (type, data type, names, keywords) and
indexed by word and by whole name, so a dependency only ever looks at outputs that share
a word with it or come from a declared compatible source (anything else matches on type
alone and cannot qualify). Even those are scored exactly only when a cheap upper bound
says they could beat the best candidate found so far; scores are cached per (dependency
evidence, output group). A benchmark is in tests/benchmarks/bench_resolver.py.

Pure: no I/O beyond reading the registry, no printing.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from regman.errors import DependencyResolutionError, NotFoundError, StepNotFoundError
from regman.scoring import (
    ACCEPTED_OUTPUT_TYPES,
    TYPE_ONLY_SCORE,
    WEIGHTS,
    DependencyForm,
    Score,
    data_type_class,
    form_of_dependency,
    form_of_output,
    requested_job_type,
    score_candidate,
    score_total,
    source_key,
    split_job_type,
    step_job_type,
    unexplained,
)
from regman.spec import DependencySpec, DependencyType, OutputSpec, StepSpecification

DEFAULT_THRESHOLD = 0.5


class SpecSource(Protocol):
    """What the resolver reads: a registry's name and its specs (a SpecificationRegistry)."""

    @property
    def context_name(self) -> str: ...

    def list_specifications(self) -> dict[str, StepSpecification]: ...


# -- public results ----------------------------------------------------------------------


@dataclass(frozen=True)
class PropertyReference:
    """Where a dependency's value comes from: ``step_name``'s ``output_name``."""

    step_name: str
    output_name: str
    property_path: str
    score: float = 1.0

    def __repr__(self) -> str:
        return (
            f"PropertyReference({self.step_name}.{self.output_name} -> "
            f"{self.property_path}, score={self.score:.2f})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_name": self.step_name,
            "output_name": self.output_name,
            "property_path": self.property_path,
            "score": self.score,
        }

    def to_sagemaker_property(self) -> dict[str, str]:
        """The SageMaker pipeline JSON reference (``{"Get": "Steps.<step>.properties..."}``)."""
        return {"Get": f"Steps.{self.step_name}.{self.property_path}"}


@dataclass(frozen=True)
class ResolvedDependency:
    """One edge ``consumer.dependency <- provider.output`` with its score and notes."""

    consumer: str
    dependency: str
    provider: str
    output: str
    property_path: str
    required: bool
    score: Score
    notes: tuple[str, ...] = ()

    @property
    def reference(self) -> PropertyReference:
        return PropertyReference(self.provider, self.output, self.property_path, self.score.total)

    def to_dict(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "dependency": self.dependency,
            "provider": self.provider,
            "output": self.output,
            "property_path": self.property_path,
            "required": self.required,
            "score": self.score.total,
            "breakdown": self.score.to_dict(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class UnresolvedDependency:
    """A dependency left unwired, and why."""

    consumer: str
    dependency: str
    required: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "dependency": self.dependency,
            "required": self.required,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ResolutionReport:
    """Everything one resolution decided: edges, what stayed unresolved, the order."""

    context: str
    threshold: float
    steps: tuple[str, ...]
    edges: tuple[ResolvedDependency, ...]
    unresolved: tuple[UnresolvedDependency, ...]
    order: tuple[str, ...]

    @property
    def total_dependencies(self) -> int:
        return len(self.edges) + len(self.unresolved)

    @property
    def resolution_rate(self) -> float:
        total = self.total_dependencies
        return len(self.edges) / total if total else 1.0

    @property
    def unresolved_required(self) -> list[UnresolvedDependency]:
        return [u for u in self.unresolved if u.required]

    @property
    def unresolved_optional(self) -> list[UnresolvedDependency]:
        return [u for u in self.unresolved if not u.required]

    @property
    def ok(self) -> bool:
        """True when every required dependency is wired."""
        return not self.unresolved_required

    def wiring(self) -> dict[str, dict[str, PropertyReference]]:
        """``{step: {dependency: PropertyReference}}`` for every step, sorted."""
        result: dict[str, dict[str, PropertyReference]] = {step: {} for step in self.steps}
        for edge in self.edges:
            result[edge.consumer][edge.dependency] = edge.reference
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "threshold": self.threshold,
            "steps": list(self.steps),
            "resolved": [e.to_dict() for e in self.edges],
            "unresolved_required": [u.to_dict() for u in self.unresolved_required],
            "unresolved_optional": [u.to_dict() for u in self.unresolved_optional],
            "total_dependencies": self.total_dependencies,
            "resolution_rate": round(self.resolution_rate, 4),
            "order": list(self.order),
        }


@dataclass(frozen=True)
class Candidate:
    """One output considered for a dependency, as :meth:`DependencyResolver.explain` shows it."""

    provider: str
    output: str
    property_path: str
    score: Score
    provider_job_type: str | None
    status: str  # chosen | closes a cycle | job type | tie | lower score | below threshold
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "output": self.output,
            "property_path": self.property_path,
            "score": self.score.total,
            "breakdown": self.score.to_dict(),
            "provider_job_type": self.provider_job_type,
            "status": self.status,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class IncompatibleOutput:
    provider: str
    output: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "output": self.output, "reason": self.reason}


@dataclass(frozen=True)
class Explanation:
    """Why a dependency was wired as it was: every candidate, ranked, with its reasons."""

    context: str
    step: str
    dependency: str
    dependency_type: DependencyType
    data_type: str
    required: bool
    threshold: float
    step_job_type: str | None
    preferred_job_type: str | None
    chosen: Candidate | None
    candidates: tuple[Candidate, ...]
    incompatible: tuple[IncompatibleOutput, ...] = field(default=())
    unresolved_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "step": self.step,
            "dependency": self.dependency,
            "dependency_type": self.dependency_type.value,
            "data_type": self.data_type,
            "required": self.required,
            "threshold": self.threshold,
            "step_job_type": self.step_job_type,
            "preferred_job_type": self.preferred_job_type,
            "chosen": self.chosen.to_dict() if self.chosen else None,
            "unresolved_reason": self.unresolved_reason,
            "candidates": [c.to_dict() for c in self.candidates],
            "incompatible": [i.to_dict() for i in self.incompatible],
        }


# -- the index ---------------------------------------------------------------------------

_Kind = tuple[DependencyType, str]  # (output type, data type class): what a filter accepts


class _Provided(NamedTuple):
    step: str
    output_name: str
    output: OutputSpec
    job: str | None
    signature: int


class _Signature:
    """Outputs with the same evidence (type, data type, names, keywords) score alike."""

    __slots__ = ("buckets", "form", "kind", "min_weight", "n_keywords", "n_multi", "output_type")

    def __init__(self, output: OutputSpec) -> None:
        self.output_type = output.output_type
        self.kind: _Kind = (output.output_type, data_type_class(output.data_type))
        self.form = form = form_of_output(output)
        # for the cheap upper bound of a score (see _Candidates)
        self.min_weight = min(name.weight for name in form.names)
        self.n_keywords = len(form.keywords.all)
        self.n_multi = len(form.keywords.multi)
        # job type -> members sorted by (step, output); filled in sorted order
        self.buckets: dict[str | None, list[_Provided]] = {}


class _Index:
    """The given steps' outputs, grouped by signature and indexed by evidence words."""

    def __init__(self, specs: Mapping[str, StepSpecification]) -> None:
        self.specs = specs
        self.jobs = {step: step_job_type(step, spec) for step, spec in specs.items()}
        self.signatures: list[_Signature] = []
        self.outputs_by_step: dict[str, list[_Provided]] = {}
        # kind -> word -> signatures whose names, aliases or keywords hold the word
        self.postings: dict[_Kind, dict[str, list[int]]] = {}
        # kind -> normalised whole name -> signatures with that name or alias
        self.compacts: dict[_Kind, dict[str, list[int]]] = {}
        self.signatures_by_kind: dict[_Kind, list[int]] = {}
        self.outputs_by_kind: dict[_Kind, int] = {}
        self.steps_by_source: dict[str, list[str]] = {}
        self._dependency_ids: dict[tuple[Any, ...], int] = {}
        # per dependency id: signature id -> (unexplained, total without source)
        self._scores: list[dict[int, tuple[float, float]]] = []
        # per (dependency id, job preference): (pending, below) bounds, see _Candidates
        self.bounds: dict[tuple[int, tuple[str | None, bool]], _BoundTable] = {}
        ids: dict[tuple[Any, ...], int] = {}
        for step in sorted(specs):
            spec = specs[step]
            for names in sorted({source_key(spec.step_type), source_key(split_job_type(step)[0])}):
                self.steps_by_source.setdefault(names, []).append(step)
            provided = []
            for name in sorted(spec.outputs):
                output = spec.outputs[name]
                key = (
                    output.output_type,
                    output.data_type,
                    output.logical_name,
                    tuple(output.aliases),
                    tuple(output.semantic_keywords),
                )
                sid = ids.get(key)
                if sid is None:
                    sid = ids[key] = len(self.signatures)
                    signature = _Signature(output)
                    self.signatures.append(signature)
                    self.signatures_by_kind.setdefault(signature.kind, []).append(sid)
                    words = self.postings.setdefault(signature.kind, {})
                    for word in signature.form.vocabulary:
                        words.setdefault(word, []).append(sid)
                    compacts = self.compacts.setdefault(signature.kind, {})
                    for compact in {n.compact for n in signature.form.names if n.compact}:
                        compacts.setdefault(compact, []).append(sid)
                signature = self.signatures[sid]
                item = _Provided(step, name, output, self.jobs[step], sid)
                signature.buckets.setdefault(item.job, []).append(item)
                self.outputs_by_kind[signature.kind] = (
                    self.outputs_by_kind.get(signature.kind, 0) + 1
                )
                provided.append(item)
            self.outputs_by_step[step] = provided

    @staticmethod
    def kinds(dependency: DependencySpec) -> list[_Kind]:
        data_class = data_type_class(dependency.data_type)
        return [(kind, data_class) for kind in ACCEPTED_OUTPUT_TYPES[dependency.dependency_type]]

    def dependency_id(self, dependency: DependencySpec) -> int:
        """Dependencies with the same evidence share an id, hence cached scores."""
        key = (
            dependency.dependency_type,
            data_type_class(dependency.data_type),
            dependency.logical_name,
            tuple(dependency.semantic_keywords),
        )
        found = self._dependency_ids.get(key)
        if found is None:
            found = self._dependency_ids[key] = len(self._scores)
            self._scores.append({})
        return found

    def scores(self, dep_id: int) -> dict[int, tuple[float, float]]:
        return self._scores[dep_id]


_Preference = tuple[str | None, bool]  # (job type wanted, is it the consumer's own?)


def _preference(index: _Index, consumer: str, dep: DependencySpec) -> _Preference:
    own = index.jobs[consumer]
    return (own, True) if own is not None else (requested_job_type(dep), False)


def _tier(preference: _Preference, job: str | None) -> int:
    """Lower goes first. A step with a job type ranks providers of its own job type, then
    ones without, then others; a dependency asking for a job type (its step has none)
    only puts providers of another explicit job type last."""
    wanted, own = preference
    if wanted is None or job == wanted:
        return 0
    if job is None:
        return 1 if own else 0
    return 2 if own else 1


# (tier, -total, provider, output, group, position): unique by (provider, output), so
# comparisons never reach the last two fields
_Rank = tuple[int, float, str, str, int, int]


# Candidates sharing tier and score: a signature's members of one job type, or one output
# of a declared compatible source: (tier, -total, members, from a compatible source)
_Group = tuple[int, float, list[_Provided], bool]


class _NearMiss(NamedTuple):
    total: float
    provider: str
    output: str


_MARGIN = 1e-4  # covers the rounding of totals to 4 places, so bounds stay bounds
_W_TYPE, _W_NAME = WEIGHTS["type"], WEIGHTS["name"]
_W_DEP_KW, _W_OUT_KW = WEIGHTS["dependency_keywords"], WEIGHTS["output_keywords"]


# A pending entry: (tier, -bound, what, payload). ``what`` 0: a class of outputs sharing
# ``payload`` evidence words, not yet bounded one by one; 1: the signature ``payload``.
_Pending = tuple[int, float, int, int]


class _BoundTable:
    """Upper bounds of scores for one dependency's evidence (shared by every dependency
    with the same evidence, data type and job preference).

    Outputs sharing evidence words are grouped by how many of the dependency's words they
    share; a class gets one optimistic bound, and its members are bounded one by one (a
    cheap computation, still one per output) only when that class bound could matter.
    Popular words ("model", "evaluation") put hundreds of outputs in the one-word class,
    which a dependency with a strong candidate never opens.
    """

    __slots__ = (
        "_by_compact",
        "_by_keyword",
        "_by_multi",
        "_by_name",
        "_classes",
        "_compact_below",
        "_dep_form",
        "_dep_type",
        "_expanded",
        "_index",
        "_preference",
        "_threshold",
        "below_classes",
        "initial",
    )

    def __init__(
        self,
        index: _Index,
        dep_form: DependencyForm,
        dep_type: DependencyType,
        kinds: list[_Kind],
        preference: _Preference,
        threshold: float,
    ) -> None:
        self._index, self._dep_form, self._dep_type = index, dep_form, dep_type
        self._preference, self._threshold = preference, threshold
        name_words, keywords = dep_form.name.informative, dep_form.keywords
        compact = dep_form.name.compact
        by_name: Counter[int] = Counter()
        by_keyword: Counter[int] = Counter()
        shared: Counter[int] = Counter()  # distinct dependency words shared, any role
        by_multi: set[int] = set()
        by_compact: set[int] = set()
        everything: set[int] = set()
        multi_words = frozenset(word for words in keywords.multi for word in words)
        for kind in kinds:
            if compact:
                by_compact.update(index.compacts.get(kind, {}).get(compact, ()))
            if threshold <= TYPE_ONLY_SCORE:  # even type-only candidates qualify
                everything.update(index.signatures_by_kind.get(kind, ()))
            postings = index.postings.get(kind)
            if not postings:
                continue
            for word in name_words:
                by_name.update(postings.get(word, ()))
            for word in keywords.single:
                by_keyword.update(postings.get(word, ()))
            for word in multi_words:
                by_multi.update(postings.get(word, ()))
            for word in dep_form.vocabulary:
                shared.update(postings.get(word, ()))
        self._by_name, self._by_keyword = by_name, by_keyword
        self._by_multi, self._by_compact = by_multi, by_compact
        classes: dict[int, list[int]] = {}
        for sid, count in shared.items():
            if sid not in by_compact:
                classes.setdefault(count, []).append(sid)
        for sid in everything.difference(shared, by_compact):
            classes.setdefault(0, []).append(sid)
        self._classes = classes
        self._expanded: dict[int, tuple[list[_Pending], list[tuple[float, int]]]] = {}
        qualifying, below = self._bound_each(sorted(by_compact))
        initial: list[_Pending] = qualifying
        self.below_classes: list[int] = []
        for count in classes:
            bound = self._class_bound(count)
            if bound < threshold:
                self.below_classes.append(count)
            else:
                initial.append((0, -bound, 0, count))
        self._compact_below = below
        initial.sort()
        self.initial = initial

    def _class_bound(self, count: int) -> float:
        """The best any output sharing ``count`` words (none the whole name) could score."""
        form = self._dep_form
        names = min(count, len(form.name.informative))
        remaining = 1.0 - _W_TYPE
        if names:
            similarity = 2 * names / (form.name.weight + names)
            remaining *= 1.0 - _W_NAME * (similarity if similarity < 1.0 else 1.0)
        keywords = form.keywords
        if keywords.all and count:
            found = min(count, len(keywords.single)) + len(keywords.multi)
            found = found if found < len(keywords.all) else len(keywords.all)
            if found:
                remaining *= 1.0 - _W_DEP_KW * (0.5 + 0.5 * found / len(keywords.all))
        if count:
            remaining *= 1.0 - _W_OUT_KW
        return 1.0 - remaining + _MARGIN

    def expand(self, count: int) -> tuple[list[_Pending], list[tuple[float, int]]]:
        """The class's members, bounded one by one (cached): those that may qualify as
        pending entries, the others as (-bound, sid)."""
        found = self._expanded.get(count)
        if found is None:
            found = self._expanded[count] = self._bound_each(self._classes[count])
        return found

    def below_members(self) -> list[tuple[float, int]]:
        """(-bound, sid) of every output that cannot qualify, bounded one by one."""
        below = list(self._compact_below)
        for count in self.below_classes:
            below.extend(self.expand(count)[1])
        return below

    def _bound_each(self, sids: Iterable[int]) -> tuple[list[_Pending], list[tuple[float, int]]]:
        """Each factor is at most the exact one (see scoring._components): a shared word
        can only raise a similarity or a keyword count by one."""
        threshold, (wanted, own) = self._threshold, self._preference
        dep_form, signatures = self._dep_form, self._index.signatures
        by_name, by_keyword = self._by_name, self._by_keyword
        by_multi, by_compact = self._by_multi, self._by_compact
        weight = dep_form.name.weight
        keywords = dep_form.keywords
        n_keywords, n_multi = len(keywords.all), len(keywords.multi)
        multi_words = sum(len(words) for words in keywords.multi)
        exact_type, other_type = 1.0 - _W_TYPE, 1.0 - _W_TYPE / 2
        get_name, get_keyword = by_name.get, by_keyword.get
        pending: list[_Pending] = []
        below: list[tuple[float, int]] = []
        for sid in sids:
            signature = signatures[sid]
            remaining = exact_type if signature.output_type == self._dep_type else other_type
            shared_name = get_name(sid, 0)
            if sid in by_compact:
                remaining *= 1.0 - _W_NAME
            elif shared_name:
                other = signature.min_weight
                similarity = (
                    2 * shared_name / (weight + (other if other > shared_name else shared_name))
                )
                remaining *= 1.0 - _W_NAME * (similarity if similarity < 1.0 else 1.0)
            shared_keyword = get_keyword(sid, 0)
            in_multi = sid in by_multi
            if n_keywords:
                found = shared_keyword + (n_multi if in_multi else 0)
                if found:
                    if found > n_keywords:
                        found = n_keywords
                    remaining *= 1.0 - _W_DEP_KW * (0.5 + 0.5 * found / n_keywords)
            n_out = signature.n_keywords
            if n_out:
                found = shared_name + shared_keyword + (multi_words if in_multi else 0)
                if found:
                    found += signature.n_multi
                    if found > n_out:
                        found = n_out
                    remaining *= 1.0 - _W_OUT_KW * (0.5 + 0.5 * found / n_out)
            bound = 1.0 - remaining + _MARGIN
            if bound < threshold:
                below.append((-bound, sid))
            else:
                jobs = signature.buckets  # the best tier among its providers (see _tier)
                if wanted is None or wanted in jobs:
                    tier = 0
                elif own:
                    tier = 1 if None in jobs else 2
                else:
                    tier = 0 if None in jobs else 1
                pending.append((tier, -bound, 1, sid))
        return pending, below


class _Candidates:
    """One dependency's qualifying candidates, best first, computed lazily.

    Outputs of declared compatible sources are scored at once (there are few). Other
    outputs sharing evidence words wait in a heap under upper bounds (see _BoundTable);
    one is scored exactly only when its bound could beat or tie the best candidate found
    so far. Scored outputs with equal rank form groups; a heap holds each group's next
    member by name.
    """

    __slots__ = (
        "_below",
        "_consumer",
        "_dep_form",
        "_dep_type",
        "_groups",
        "_heap",
        "_index",
        "_kinds",
        "_miss",
        "_pending",
        "_preferred",
        "_scores",
        "_sources",
        "_table",
        "_threshold",
    )

    def __init__(self, index: _Index, consumer: str, dep: DependencySpec, threshold: float) -> None:
        self._index, self._consumer, self._threshold = index, consumer, threshold
        self._dep_form = form_of_dependency(dep)
        self._dep_type = dep.dependency_type
        self._preferred = preferred = _preference(index, consumer, dep)
        dep_id = index.dependency_id(dep)
        self._scores = index.scores(dep_id)
        self._groups: list[_Group] = []
        self._heap: list[_Rank] = []
        self._miss: _NearMiss | None = None
        self._below: list[tuple[float, int]] = []  # (-total, sid) scored below the threshold
        self._kinds = kinds = index.kinds(dep)
        signatures = index.signatures

        sources: set[str] = set()
        for source in dep.compatible_sources:
            sources.update(index.steps_by_source.get(source_key(source), ()))
        sources.discard(consumer)
        self._sources = sources
        for provider in sorted(sources):
            for item in index.outputs_by_step[provider]:
                if signatures[item.signature].kind not in kinds:
                    continue
                total = score_total(self._score(item.signature)[0], True)
                if total >= threshold:
                    self._add((_tier(preferred, item.job), -total, [item], True))
                elif self._miss is None or (-total, provider) < (
                    -self._miss.total,
                    self._miss.provider,
                ):
                    self._miss = _NearMiss(total, provider, item.output_name)

        table = index.bounds.get((dep_id, preferred))
        if table is None:
            table = index.bounds[(dep_id, preferred)] = _BoundTable(
                index, self._dep_form, self._dep_type, kinds, preferred, threshold
            )
        self._table = table
        self._pending = list(table.initial)  # sorted, hence already a heap

    def _score(self, sid: int) -> tuple[float, float]:
        """(unexplained, total without source) for a signature, cached per dependency."""
        found = self._scores.get(sid)
        if found is None:
            signature = self._index.signatures[sid]
            exact = signature.output_type == self._dep_type
            remaining = unexplained(self._dep_form, signature.form, exact)
            found = self._scores[sid] = (remaining, score_total(remaining, False))
        return found

    def _add(self, group: _Group) -> None:
        self._groups.append(group)
        self._push_next(len(self._groups) - 1, 0)

    def _push_next(self, number: int, start: int) -> None:
        tier, negative_total, members, from_source = self._groups[number]
        consumer, sources = self._consumer, self._sources
        for position in range(start, len(members)):
            item = members[position]
            if item.step == consumer or (not from_source and item.step in sources):
                continue  # own outputs never; source providers rank in their own groups
            rank = (tier, negative_total, item.step, item.output_name, number, position)
            heapq.heappush(self._heap, rank)
            return

    def _settle(self) -> None:
        """Open classes and score outputs until no pending bound could beat or tie the
        heap's head."""
        pending, heap = self._pending, self._heap
        while pending:
            entry = pending[0]
            if heap and entry[:2] > heap[0][:2]:
                return
            heapq.heappop(pending)
            if entry[2] == 0:
                qualifying, below = self._table.expand(entry[3])
                self._below.extend(below)
                for item in qualifying:
                    heapq.heappush(pending, item)
                continue
            sid = entry[3]
            total = self._score(sid)[1]
            if total < self._threshold:
                self._below.append((-total, sid))
                continue
            for job, members in self._index.signatures[sid].buckets.items():
                self._add((_tier(self._preferred, job), -total, members, False))

    @property
    def head(self) -> _Rank | None:
        self._settle()
        return self._heap[0] if self._heap else None

    def pop(self) -> _Rank:
        self._settle()
        rank = heapq.heappop(self._heap)
        self._push_next(rank[4], rank[5] + 1)
        return rank

    def item(self, rank: _Rank) -> _Provided:
        return self._groups[rank[4]][2][rank[5]]

    def best_upstream(
        self, level: tuple[int, float], upstream: set[str]
    ) -> tuple[int, float, str, str, _Provided] | None:
        """The first (by name) output of an ``upstream`` step ranked at ``level``, if any.

        Breaks a tie without popping every tied candidate: upstream steps are few, ties
        across many pipelines can be large.
        """
        index, kinds, sources = self._index, self._kinds, self._sources
        best = None
        for provider in upstream:
            if provider == self._consumer:
                continue
            for item in index.outputs_by_step[provider]:
                if index.signatures[item.signature].kind not in kinds:
                    continue
                total = score_total(self._score(item.signature)[0], provider in sources)
                if (_tier(self._preferred, item.job), -total) != level:
                    continue
                found = (level[0], level[1], provider, item.output_name, item)
                if best is None or found[2:4] < best[2:4]:
                    best = found
        return best

    def near_miss(self) -> _NearMiss | None:
        """The best candidate below the threshold (for an unresolved dependency's reason)."""
        miss = self._miss
        # exact totals and bounds, best first; classes never opened are bounded now
        below = sorted([*self._below, *self._table.below_members()])
        for negative, sid in below:
            if miss is not None and -negative < miss.total:
                break
            total = self._score(sid)[1]
            if miss is not None and total < miss.total:
                continue
            first = _first_member(self._index.signatures[sid], self._consumer, self._sources)
            if first is not None and (
                miss is None
                or (-total, first.step, first.output_name)
                < (-miss.total, miss.provider, miss.output)
            ):
                miss = _NearMiss(total, first.step, first.output_name)
        return miss


class _Choice(NamedTuple):
    tier: int
    negative_total: float
    provider: str
    output: str
    item: _Provided


@dataclass
class _Run:
    """The internal outcome of one resolution."""

    steps: tuple[str, ...]
    index: _Index
    chosen: dict[tuple[str, str], _Choice] = field(default_factory=dict)
    notes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    skipped: dict[tuple[str, str], dict[tuple[str, str], str]] = field(default_factory=dict)
    unresolved: dict[tuple[str, str], str] = field(default_factory=dict)
    order: tuple[str, ...] = ()


# -- the resolver ------------------------------------------------------------------------


class DependencyResolver:
    """Wires the dependencies of a context's steps to other steps' outputs.

    ``registry`` is a SpecificationRegistry (anything with ``context_name`` and
    ``list_specifications()``); ``threshold`` is the lowest score that may be wired.
    Every method takes the step names to consider; None means every step of the context.
    """

    def __init__(self, registry: SpecSource, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
        self.registry = registry
        self.threshold = threshold
        self._cached: tuple[tuple[tuple[str, int], ...], _Run] | None = None

    def __repr__(self) -> str:
        return f"DependencyResolver({self.registry!r}, threshold={self.threshold})"

    # -- public API ------------------------------------------------------------------------

    def resolve_dependencies(
        self, step_names: Iterable[str] | None = None
    ) -> dict[str, dict[str, PropertyReference]]:
        """``{step: {dependency: PropertyReference}}`` for the given steps.

        Raises DependencyResolutionError naming every unresolved required dependency
        (its ``report`` is the full ResolutionReport); optional ones may stay unwired.
        """
        report = self.get_resolution_report(step_names)
        _raise_if_required_missing(report, report.unresolved_required)
        return report.wiring()

    def resolve_step_dependencies(
        self, step: str, available_steps: Iterable[str] | None = None
    ) -> dict[str, PropertyReference]:
        """``{dependency: PropertyReference}`` for ``step``, wired among ``available_steps``.

        The wiring is the one ``resolve_dependencies(available_steps + [step])`` gives, so
        it never closes a cycle with the other steps' wiring.
        """
        names = None if available_steps is None else [step, *available_steps]
        report = self.get_resolution_report(names)
        if step not in report.steps:
            raise StepNotFoundError(self.registry.context_name, step)
        missing = [u for u in report.unresolved_required if u.consumer == step]
        _raise_if_required_missing(report, missing)
        return report.wiring()[step]

    def get_resolution_report(self, step_names: Iterable[str] | None = None) -> ResolutionReport:
        """The full picture; never raises for unresolved dependencies."""
        run = self._run(step_names)
        return self._report(run)

    def execution_order(self, step_names: Iterable[str] | None = None) -> list[str]:
        """The steps in an order where every provider comes before its consumers.

        Among steps that could go next, the first by name goes first, so it is stable.
        Unresolved dependencies do not stop it: the order is that of what was wired.
        """
        return list(self._run(step_names).order)

    def explain(
        self, step: str, dependency: str, available_steps: Iterable[str] | None = None
    ) -> Explanation:
        """Every output considered for ``step.dependency``, ranked, and why each lost or won."""
        names = None if available_steps is None else [step, *available_steps]
        run = self._run(names)
        index = run.index
        spec = index.specs.get(step)
        if spec is None:
            raise StepNotFoundError(self.registry.context_name, step)
        dep = spec.dependencies.get(dependency)
        if dep is None:
            known = ", ".join(sorted(spec.dependencies)) or "none"
            raise NotFoundError(
                f"step '{step}' has no dependency '{dependency}'",
                hint=f"its dependencies: {known}",
            )
        preferred = _preference(index, step, dep)
        qualifying: list[tuple[tuple[Any, ...], Candidate]] = []
        below: list[tuple[tuple[Any, ...], Candidate]] = []
        incompatible: list[IncompatibleOutput] = []
        for provider in run.steps:
            if provider == step:
                continue
            provider_spec = index.specs[provider]
            job = index.jobs[provider]
            for name in sorted(provider_spec.outputs):
                output = provider_spec.outputs[name]
                score = score_candidate(
                    dep, output, provider_step=provider, provider_spec=provider_spec
                )
                if score is None:
                    incompatible.append(
                        IncompatibleOutput(provider, name, _incompatibility(dep, output))
                    )
                    continue
                candidate = Candidate(provider, name, output.property_path, score, job, "", "")
                if score.total >= self.threshold:
                    rank = (_tier(preferred, job), -score.total, provider, name)
                    qualifying.append((rank, candidate))
                else:
                    below.append(((-score.total, provider, name), candidate))
        qualifying.sort(key=lambda item: item[0])
        below.sort(key=lambda item: item[0])
        key = (step, dependency)
        chosen_rank = run.chosen.get(key)
        skipped = run.skipped.get(key, {})
        ranked: list[Candidate] = []
        chosen: Candidate | None = None
        for rank, candidate in qualifying:
            status, reason = self._status(rank, candidate, chosen_rank, skipped, preferred, step)
            described = _with_status(candidate, status, reason)
            if status == "chosen":
                chosen = described
            ranked.append(described)
        for _, candidate in below:
            reason = f"scores {candidate.score.total:.2f}, below the threshold {self.threshold}"
            ranked.append(_with_status(candidate, "below threshold", reason))
        return Explanation(
            context=self.registry.context_name,
            step=step,
            dependency=dependency,
            dependency_type=dep.dependency_type,
            data_type=dep.data_type,
            required=dep.required,
            threshold=self.threshold,
            step_job_type=index.jobs[step],
            preferred_job_type=preferred[0],
            chosen=chosen,
            candidates=tuple(ranked),
            incompatible=tuple(incompatible),
            unresolved_reason=run.unresolved.get(key),
        )

    # -- the algorithm ---------------------------------------------------------------------

    def _status(
        self,
        rank: tuple[Any, ...],
        candidate: Candidate,
        chosen: _Choice | None,
        skipped: Mapping[tuple[str, str], str],
        preference: _Preference,
        step: str,
    ) -> tuple[str, str]:
        where = (candidate.provider, candidate.output)
        if chosen is not None and where == (chosen.provider, chosen.output):
            return "chosen", "the best qualifying candidate that keeps the pipeline acyclic"
        if where in skipped:
            return "closes a cycle", skipped[where]
        if chosen is None or rank[:2] < chosen[:2]:
            return "closes a cycle", "it would close a cycle"
        if rank[:2] == chosen[:2]:
            return "tie", (
                f"tied with the chosen {chosen.provider}.{chosen.output} at "
                f"{-chosen.negative_total:.2f}; a provider already upstream of '{step}' "
                "goes first, then the first provider and output by name"
            )
        if rank[0] > chosen.tier:
            job = candidate.provider_job_type
            has = f"job type {job}" if job else "no job type"
            wanted, own = preference
            why = (
                f"'{step}' is a {wanted} step: its own job type first, then none, then others"
                if own
                else f"the dependency asks for {wanted} data: other job types come last"
            )
            return (
                "job type",
                f"scores {candidate.score.total:.2f} but its provider has {has}; {why}",
            )
        return "lower score", (
            f"scores {candidate.score.total:.2f}, less than the chosen {-chosen.negative_total:.2f}"
        )

    def _run(self, step_names: Iterable[str] | None) -> _Run:
        context = self.registry.context_name
        specs = self.registry.list_specifications()
        if step_names is None:
            names = sorted(specs)
        else:
            wanted = list(dict.fromkeys(step_names))
            for name in wanted:
                if name not in specs:
                    raise StepNotFoundError(context, name)
            names = sorted(wanted)
        key = tuple((name, id(specs[name])) for name in names)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        run = self._wire(_Index({name: specs[name] for name in names}))
        self._cached = (key, run)  # holds the specs, so their ids stay valid
        return run

    def _wire(self, index: _Index) -> _Run:
        """Commit edges strongest first, never closing a cycle (see the module docstring)."""
        run = _Run(tuple(index.specs), index)
        streams: list[_Candidates] = []
        keys: list[tuple[str, str]] = []
        heap: list[tuple[float, str, str, int]] = []
        for consumer in run.steps:
            spec = index.specs[consumer]
            for dep_name in sorted(spec.dependencies):
                dep = spec.dependencies[dep_name]
                stream = _Candidates(index, consumer, dep, self.threshold)
                head = stream.head
                if head is not None:
                    heap.append((head[1], consumer, dep_name, len(streams)))
                streams.append(stream)
                keys.append((consumer, dep_name))
        heapq.heapify(heap)
        consumers_of: dict[str, dict[str, None]] = {}  # provider -> consumers, wired so far
        providers_of: dict[str, dict[str, None]] = {}
        while heap:
            _, consumer, dep_name, position = heapq.heappop(heap)
            key = (consumer, dep_name)
            stream = streams[position]
            head = stream.pop()
            level = (head[0], head[1])
            after = stream.head
            chosen: tuple[int, float, str, str, _Provided] | None = None
            why_tie = "ties go to the first provider and output by name"
            if after is not None and after[:2] == level and providers_of.get(consumer):
                # a provider the consumer already draws from goes first (never a cycle)
                chosen = stream.best_upstream(level, _reachable(providers_of, consumer))
                if chosen is not None:
                    why_tie = f"chose {chosen[2]}, already upstream of {consumer}"
            candidate: _Rank | None = head
            while chosen is None and candidate is not None:
                cycle = _path(consumers_of, consumer, candidate[2])
                if cycle is None:
                    chosen = (*candidate[:4], stream.item(candidate))
                    break
                route = " -> ".join([*cycle, consumer])
                run.skipped.setdefault(key, {})[(candidate[2], candidate[3])] = (
                    f"scores {-candidate[1]:.2f} but would close the cycle {route}"
                )
                after = stream.head
                candidate = stream.pop() if after is not None and after[:2] == level else None
            if chosen is None:
                if (after := stream.head) is not None:  # the next level, in its turn
                    heapq.heappush(heap, (after[1], consumer, dep_name, position))
                continue
            provider = chosen[2]
            run.chosen[key] = _Choice(*chosen)
            consumers_of.setdefault(provider, {})[consumer] = None
            providers_of.setdefault(consumer, {})[provider] = None
            notes = [
                f"preferred {p}.{o} {why.removeprefix('scores ')}"
                for (p, o), why in run.skipped.get(key, {}).items()
            ]
            rival = head if (head[2], head[3]) != (provider, chosen[3]) else stream.head
            if (
                rival is not None
                and rival[:2] == level
                and (rival[2], rival[3]) not in (run.skipped.get(key, {}))
            ):
                notes.append(f"tied at {-level[1]:.2f} with {rival[2]}.{rival[3]}; {why_tie}")
            if notes:
                run.notes[key] = notes
        for position, key in enumerate(keys):
            if key not in run.chosen:
                run.unresolved[key] = self._unresolved_reason(
                    index, key, run.skipped.get(key), streams[position].near_miss()
                )
        run.order = _topological_order(run.steps, consumers_of)
        return run

    def _unresolved_reason(
        self,
        index: _Index,
        key: tuple[str, str],
        skipped: Mapping[tuple[str, str], str] | None,
        miss: _NearMiss | None,
    ) -> str:
        consumer, dep_name = key
        if skipped:
            (provider, output), why = next(iter(skipped.items()))
            return (
                f"every qualifying candidate would close a cycle; the best, {provider}.{output}, "
                f"{why}"
            )
        if miss is not None:
            return (
                f"the best candidate, {miss.provider}.{miss.output}, scores {miss.total:.2f}, "
                f"below the threshold {self.threshold}"
            )
        dep = index.specs[consumer].dependencies[dep_name]
        kinds = index.kinds(dep)
        count = sum(index.outputs_by_kind.get(kind, 0) for kind in kinds) - sum(
            1
            for item in index.outputs_by_step[consumer]
            if index.signatures[item.signature].kind in kinds
        )
        if count:
            return (
                f"{count} output(s) of a compatible type, none with name, alias, keyword "
                "or compatible_sources evidence"
            )
        accepted = "/".join(kind.value for kind in ACCEPTED_OUTPUT_TYPES[dep.dependency_type])
        return f"no other step has an output of type {accepted} with data type {dep.data_type}"

    def _report(self, run: _Run) -> ResolutionReport:
        index = run.index
        edges: list[ResolvedDependency] = []
        unresolved: list[UnresolvedDependency] = []
        for consumer in run.steps:
            spec = index.specs[consumer]
            for dep_name in sorted(spec.dependencies):
                dep = spec.dependencies[dep_name]
                key = (consumer, dep_name)
                choice = run.chosen.get(key)
                if choice is None:
                    reason = run.unresolved[key]
                    unresolved.append(
                        UnresolvedDependency(consumer, dep_name, dep.required, reason)
                    )
                    continue
                item = choice.item
                score = score_candidate(
                    dep, item.output, provider_step=item.step, provider_spec=index.specs[item.step]
                )
                # the index must agree with the public scoring, or explain would mislead
                assert score is not None and score.total == -choice.negative_total, (key, score)
                edges.append(
                    ResolvedDependency(
                        consumer,
                        dep_name,
                        item.step,
                        item.output_name,
                        item.output.property_path,
                        dep.required,
                        score,
                        tuple(run.notes.get(key, ())),
                    )
                )
        return ResolutionReport(
            context=self.registry.context_name,
            threshold=self.threshold,
            steps=run.steps,
            edges=tuple(edges),
            unresolved=tuple(unresolved),
            order=run.order,
        )


# -- helpers -----------------------------------------------------------------------------


def _first_member(signature: _Signature, consumer: str, sources: set[str]) -> _Provided | None:
    firsts = [
        next((m for m in members if m.step != consumer and m.step not in sources), None)
        for members in signature.buckets.values()
    ]
    present = [m for m in firsts if m is not None]
    return min(present, key=lambda m: (m.step, m.output_name)) if present else None


def _reachable(edges: Mapping[str, Mapping[str, None]], start: str) -> set[str]:
    """Every node reachable from ``start`` (used upstream: the consumer's providers)."""
    seen: set[str] = set()
    stack = [start]
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _path(
    consumers_of: Mapping[str, Mapping[str, None]], start: str, goal: str
) -> list[str] | None:
    """A path start -> ... -> goal along wired edges (provider -> consumer), if any."""
    if start == goal:
        return [start]
    parents: dict[str, str | None] = {start: None}
    stack = [start]
    while stack:
        node = stack.pop()
        for nxt in consumers_of.get(node, ()):
            if nxt in parents:
                continue
            parents[nxt] = node
            if nxt == goal:
                path = [nxt]
                back = parents[nxt]
                while back is not None:
                    path.append(back)
                    back = parents[back]
                return path[::-1]
            stack.append(nxt)
    return None


def _topological_order(
    steps: tuple[str, ...], consumers_of: Mapping[str, Mapping[str, None]]
) -> tuple[str, ...]:
    """Kahn's algorithm, taking the first ready step by name at each turn."""
    waiting = dict.fromkeys(steps, 0)
    for consumers in consumers_of.values():
        for consumer in consumers:
            waiting[consumer] += 1
    ready = [step for step, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        step = heapq.heappop(ready)
        order.append(step)
        for consumer in consumers_of.get(step, ()):
            waiting[consumer] -= 1
            if waiting[consumer] == 0:
                heapq.heappush(ready, consumer)
    assert len(order) == len(steps), "the wiring has a cycle"  # the resolver never makes one
    return tuple(order)


def _incompatibility(dep: DependencySpec, output: OutputSpec) -> str:
    if output.output_type not in ACCEPTED_OUTPUT_TYPES[dep.dependency_type]:
        accepted = "/".join(kind.value for kind in ACCEPTED_OUTPUT_TYPES[dep.dependency_type])
        return f"type {output.output_type.value} (needs {accepted})"
    return f"data type {output.data_type} (needs {dep.data_type})"


def _with_status(candidate: Candidate, status: str, reason: str) -> Candidate:
    return Candidate(
        candidate.provider,
        candidate.output,
        candidate.property_path,
        candidate.score,
        candidate.provider_job_type,
        status,
        reason,
    )


def _raise_if_required_missing(
    report: ResolutionReport, missing: list[UnresolvedDependency]
) -> None:
    if not missing:
        return
    listed = "; ".join(f"{u.consumer}.{u.dependency} ({u.reason})" for u in missing)
    noun = "dependency" if len(missing) == 1 else "dependencies"
    raise DependencyResolutionError(
        f"{len(missing)} required {noun} could not be resolved in context "
        f"'{report.context}': {listed}",
        report=report,
        hint="see 'regman explain CONTEXT STEP DEPENDENCY' for the candidates",
    )


__all__ = [
    "DEFAULT_THRESHOLD",
    "Candidate",
    "DependencyResolver",
    "Explanation",
    "IncompatibleOutput",
    "PropertyReference",
    "ResolutionReport",
    "ResolvedDependency",
    "UnresolvedDependency",
]
