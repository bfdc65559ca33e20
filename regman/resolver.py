"""DependencyResolver: wire each step's dependencies to other steps' outputs, as a DAG.

How a dependency is wired (the rules a pipeline author can rely on):

1. Candidates are outputs of *other* given steps whose type and data type are compatible
   (:mod:`regman.scoring`); each gets a score in [0, 1]. Only candidates scoring at or
   above the threshold qualify; type alone never does.
2. Job types order the qualifying candidates before scores do (the job types of a
   context: :func:`regman.scoring.job_types_of`, open to any word the context uses). A
   step with a job type prefers providers of its own job type, then providers without
   one, and takes a provider of another job type only when neither qualifies. A step
   without a job type whose dependency's *name* asks for one (``training_data``) only
   puts providers of another explicit job type last. Fitted artifacts (a
   ``model_artifacts`` dependency) cross branches on purpose: the consumer's own job type
   first, every other provider equally.
3. Then the higher score wins; at an equal score, a job type the dependency's keywords
   name goes first. Still equal: a provider already upstream of the consumer, else the
   first provider and output by name (reported as a tie).
4. The wiring is acyclic: edges are committed strongest first, and a dependency whose
   best candidate would close a cycle takes its best one that does not (the report says
   so). Everything is ordered by names, so registration order never matters.
5. Then, between near-equal candidates (within :data:`NEAR_EQUAL` of the best, same job
   type rank), on the committed wiring: the nearest provider on the data path (a step
   that takes the chosen output and hands on a qualifying one of its own), then an exact
   name over an alias. Neither ever adds a backward edge.

Each step resolves with its effective spec: the ``variants`` entry of its job type
deep-merged over the stored spec (``StepSpecification.for_job_type``).

Speed (:mod:`regman.candidates`): outputs are grouped by their evidence (type, data
type, names, keywords) and indexed by word and by whole name, so a dependency only ever
looks at outputs that share a word with it or come from a declared compatible source
(anything else matches on type alone and cannot qualify). Even those are scored exactly
only when a cheap upper bound says they could beat the best candidate found so far;
scores are cached per (dependency evidence, output group). A benchmark is in
tests/benchmarks/bench_resolver.py.

Pure: no I/O beyond reading the registry, no printing.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from regman.candidates import (
    BEST_UNSOURCED,
    Candidates,
    NearMiss,
    OutputIndex,
    Preference,
    Provided,
    Rank,
    preference,
    subtier,
    tier,
)
from regman.errors import DependencyResolutionError, NotFoundError, StepNotFoundError
from regman.resolution import (
    DEFAULT_THRESHOLD,
    Candidate,
    Explanation,
    IncompatibleOutput,
    PropertyReference,
    ResolutionReport,
    ResolvedDependency,
    SpecSource,
    UnresolvedDependency,
)
from regman.scoring import (
    ACCEPTED_OUTPUT_TYPES,
    job_types_of,
    score_candidate,
)
from regman.spec import DependencySpec, OutputSpec, StepSpecification


class _Choice(NamedTuple):
    tier: int
    negative_total: float
    subtier: int
    provider: str
    output: str
    item: Provided


@dataclass
class _Run:
    """The internal outcome of one resolution."""

    steps: tuple[str, ...]
    index: OutputIndex
    chosen: dict[tuple[str, str], _Choice] = field(default_factory=dict)
    notes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    skipped: dict[tuple[str, str], dict[tuple[str, str], str]] = field(default_factory=dict)
    unresolved: dict[tuple[str, str], str] = field(default_factory=dict)
    # dependencies whose choice a near-equal rule moved: (status, reason) for the
    # candidates ranked above the final choice
    refined: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    ties: dict[tuple[str, str], str] = field(default_factory=dict)  # -> "provider.output"
    order: tuple[str, ...] = ()


#: Candidates within this much of the best score are near-equal: between them the
#: nearest provider on the data path, then an exact name, decide before the score.
NEAR_EQUAL = 0.05

Key = tuple[str, str]  # (consumer, dependency)


class _Graph:
    """The wiring while it is refined: edge counts per (provider, consumer) and who takes
    each output, kept in step with the resolver's adjacency maps."""

    def __init__(
        self,
        chosen: Mapping[Key, _Choice],
        consumers_of: dict[str, dict[str, None]],
        providers_of: dict[str, dict[str, None]],
    ) -> None:
        self.consumers_of, self.providers_of = consumers_of, providers_of
        self.counts: dict[tuple[str, str], int] = {}
        self.takers: dict[tuple[str, str], dict[Key, None]] = {}
        for key in sorted(chosen):
            choice = chosen[key]
            edge = (choice.provider, key[0])
            self.counts[edge] = self.counts.get(edge, 0) + 1
            self.takers.setdefault((choice.provider, choice.output), {})[key] = None

    def move(self, key: Key, old: _Choice, new: _Choice) -> None:
        consumer = key[0]
        del self.takers[(old.provider, old.output)][key]
        edge = (old.provider, consumer)
        self.counts[edge] -= 1
        if not self.counts[edge]:
            del self.counts[edge]
            del self.consumers_of[old.provider][consumer]
            del self.providers_of[consumer][old.provider]
        self.takers.setdefault((new.provider, new.output), {})[key] = None
        edge = (new.provider, consumer)
        self.counts[edge] = self.counts.get(edge, 0) + 1
        self.consumers_of.setdefault(new.provider, {})[consumer] = None
        self.providers_of.setdefault(consumer, {})[new.provider] = None


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

    def resolve_all_dependencies(
        self, step_names: Iterable[str] | None = None
    ) -> dict[str, dict[str, PropertyReference]]:
        """cursus' name for :meth:`resolve_dependencies` (same arguments, same result)."""
        return self.resolve_dependencies(step_names)

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

    def effective_specification(self, step: str) -> StepSpecification:
        """The spec ``step`` resolves with: its stored spec with the variant of its job type
        (as the context determines it, see ``regman.scoring.job_types_of``) merged over it.
        For ``show --effective``; the stored spec is ``registry.get_specification``."""
        specs = self.registry.list_specifications()
        spec = specs.get(step)
        if spec is None:
            raise StepNotFoundError(self.registry.context_name, step)
        return spec.for_job_type(job_types_of(specs)[step])

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
        preferred = preference(index, step, dep)
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
                    dep,
                    output,
                    provider_step=provider,
                    provider_spec=provider_spec,
                    provider_job=job,
                )
                if score is None:
                    incompatible.append(
                        IncompatibleOutput(provider, name, _incompatibility(dep, output))
                    )
                    continue
                candidate = Candidate(provider, name, output.property_path, score, job, "", "")
                if score.total >= self.threshold:
                    sub = subtier(preferred, job)
                    rank = (tier(preferred, job), -score.total, sub, provider, name)
                    qualifying.append((rank, candidate))
                else:
                    below.append(((-score.total, provider, name), candidate))
        qualifying.sort(key=lambda item: item[0])
        below.sort(key=lambda item: item[0])
        key = (step, dependency)
        chosen_rank = run.chosen.get(key)
        skipped = run.skipped.get(key, {})
        stale: set[tuple[str, str]] = set()
        if skipped and run.refined:
            # a near-equal rule moved edges after these were passed over: the cycle one
            # would have closed may be gone from the final wiring
            final: dict[str, dict[str, None]] = {}
            for (consumer, _), choice in run.chosen.items():
                final.setdefault(choice.provider, {})[consumer] = None
            stale = {where for where in skipped if _path(final, step, where[0]) is None}
        ranked: list[Candidate] = []
        chosen: Candidate | None = None
        for rank, candidate in qualifying:
            status, reason = self._status(
                rank, candidate, chosen_rank, skipped, preferred, step, run.refined.get(key)
            )
            if (candidate.provider, candidate.output) in stale:
                status, reason = (
                    "passed over",
                    (f"{reason}, when it was considered; near-equal rules moved edges later"),
                )
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
        preference: Preference,
        step: str,
        refined: tuple[str, str] | None = None,
    ) -> tuple[str, str]:
        where = (candidate.provider, candidate.output)
        if chosen is not None and where == (chosen.provider, chosen.output):
            if refined is not None:
                return "chosen", refined[1]
            return "chosen", "the best qualifying candidate that keeps the pipeline acyclic"
        if where in skipped:
            return "closes a cycle", skipped[where]
        if refined is not None and chosen is not None and rank[:3] < chosen[:3]:
            return refined[0], (
                f"scores {candidate.score.total:.2f}, within {NEAR_EQUAL} of the best; {refined[1]}"
            )
        if chosen is None or rank[:3] < chosen[:3]:
            return "closes a cycle", "it would close a cycle"
        if rank[:3] == chosen[:3]:
            return "tie", (
                f"tied with the chosen {chosen.provider}.{chosen.output} at "
                f"{-chosen.negative_total:.2f}; a provider already upstream of '{step}' "
                "goes first, then the first provider and output by name"
            )
        if rank[:2] == chosen[:2]:
            return "job type", (
                f"scores {candidate.score.total:.2f} like the chosen one, whose job type is "
                f"the one the dependency's keywords name ({preference.hinted})"
            )
        if rank[0] > chosen.tier:
            job = candidate.provider_job_type
            has = f"job type {job}" if job else "no job type"
            wanted, own, fitted, _ = preference
            if fitted:
                why = f"'{step}' is a {wanted} step: fitted artifacts of its own job type first"
            elif own:
                why = f"'{step}' is a {wanted} step: its own job type first, then none, then others"
            else:
                why = f"the dependency asks for {wanted} data: other job types come last"
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
        run = self._wire(OutputIndex({name: specs[name] for name in names}))
        self._cached = (key, run)  # holds the specs, so their ids stay valid
        return run

    def _wire(self, index: OutputIndex) -> _Run:
        """Commit edges strongest first, never closing a cycle (see the module docstring)."""
        run = _Run(tuple(index.specs), index)
        streams: list[Candidates] = []
        keys: list[tuple[str, str]] = []
        heap: list[tuple[float, str, str, int]] = []
        for consumer in run.steps:
            spec = index.specs[consumer]
            for dep_name in sorted(spec.dependencies):
                dep = spec.dependencies[dep_name]
                stream = Candidates(index, consumer, dep, self.threshold)
                head = stream.head
                if head is not None:
                    heap.append((head.negative_total, consumer, dep_name, len(streams)))
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
            level = head.level
            after = stream.head
            chosen: _Choice | None = None
            why_tie = "ties go to the first provider and output by name"
            by_upstream = False
            if after is not None and after.level == level and providers_of.get(consumer):
                # a provider the consumer already draws from goes first (never a cycle)
                found = stream.best_upstream(level, _reachable(providers_of, consumer))
                if found is not None:
                    chosen = _Choice(found[0], found[1], level[2], *found[2:])
                    why_tie = f"chose {chosen.provider}, already upstream of {consumer}"
                    by_upstream = True
            candidate: Rank | None = head
            while chosen is None and candidate is not None:
                cycle = _path(consumers_of, consumer, candidate.provider)
                if cycle is None:
                    chosen = _Choice(
                        *level, candidate.provider, candidate.output, stream.item(candidate)
                    )
                    break
                route = " -> ".join([*cycle, consumer])
                run.skipped.setdefault(key, {})[(candidate.provider, candidate.output)] = (
                    f"scores {-candidate.negative_total:.2f} but would close the cycle {route}"
                )
                after = stream.head
                candidate = stream.pop() if after is not None and after.level == level else None
            if chosen is None:
                if (after := stream.head) is not None:  # the next level, in its turn
                    heapq.heappush(heap, (after.negative_total, consumer, dep_name, position))
                continue
            provider = chosen.provider
            run.chosen[key] = chosen
            consumers_of.setdefault(provider, {})[consumer] = None
            providers_of.setdefault(consumer, {})[provider] = None
            notes = [
                f"preferred {p}.{o} {why.removeprefix('scores ')}"
                for (p, o), why in run.skipped.get(key, {}).items()
            ]
            rival = (
                head if (head.provider, head.output) != (provider, chosen.output) else stream.head
            )
            if (
                rival is not None
                and rival.level == level
                and (rival.provider, rival.output) not in (run.skipped.get(key, {}))
            ):
                notes.append(
                    f"tied at {-level[1]:.2f} with {rival.provider}.{rival.output}; {why_tie}"
                )
                if not by_upstream:  # decided by name only: arbitrary
                    run.ties[key] = f"{rival.provider}.{rival.output}"
            if notes:
                run.notes[key] = notes
        self._refine(
            run, {key: streams[i] for i, key in enumerate(keys)}, consumers_of, providers_of
        )
        for position, key in enumerate(keys):
            if key not in run.chosen:
                run.unresolved[key] = self._unresolved_reason(
                    index, key, run.skipped.get(key), streams[position].near_miss()
                )
        run.order = _topological_order(run.steps, consumers_of)
        return run

    def _refine(
        self,
        run: _Run,
        streams: Mapping[Key, Candidates],
        consumers_of: dict[str, dict[str, None]],
        providers_of: dict[str, dict[str, None]],
    ) -> None:
        """Rules between near-equal candidates (within NEAR_EQUAL of the best, same job-type
        tier), applied to the committed wiring, dependencies in name order:

        1. the nearest provider: when the chosen provider's output is also taken by a step
           B that offers a qualifying output (a pass-through: label rules, sampling,
           feature selection...), take B's, and so on down the data path;
        2. an exact name: when the choice matched through an alias or a similar name,
           an output named exactly like the dependency goes first (one already upstream
           of the consumer first, then by rank), unless it lies upstream of the choice on
           the data path (rule 1 went past it on purpose).

        A move never closes a cycle, so the wiring stays acyclic; it depends on names
        only, so it stays deterministic.
        """
        graph = _Graph(run.chosen, consumers_of, providers_of)
        best = {key: -choice.negative_total for key, choice in run.chosen.items()}
        for _ in range(8):  # a move only goes down a data path: this settles fast
            moved = False
            for key in sorted(run.chosen):
                for _ in range(8):
                    current = run.chosen[key]
                    stream = streams[key]
                    step = self._nearer(run, graph, key, stream, current, best[key])
                    if step is None:
                        step = self._exact(run, graph, key, stream, current, best[key])
                    if step is None:
                        break
                    new, status, reason = step
                    graph.move(key, current, new)
                    run.chosen[key] = new
                    run.refined[key] = (status, reason)
                    run.notes[key] = [
                        *(n for n in run.notes.get(key, ()) if not n.startswith("tied at ")),
                        reason,
                    ]
                    run.ties.pop(key, None)  # a rule decided: no longer arbitrary
                    moved = True
            if not moved:
                return

    def _options(
        self,
        key: Key,
        stream: Candidates,
        current: _Choice,
        best: float,
        items: Iterable[Provided],
    ) -> list[tuple[tuple[int, float, int], Provided]]:
        """The near-equal qualifying candidates among ``items``, ranked."""
        found = []
        for item in items:
            if item.step == key[0] or not stream.accepts(item):
                continue
            level = stream.rank_of(item)
            total = -level[1]
            if (
                level[0] != current.tier
                or level[2] > current.subtier
                or total < self.threshold
                or total < best - NEAR_EQUAL - 1e-9
            ):
                continue
            found.append((level, item))
        found.sort(key=lambda pair: (pair[0], pair[1].step, pair[1].output_name))
        return found

    def _nearer(
        self,
        run: _Run,
        graph: _Graph,
        key: Key,
        stream: Candidates,
        current: _Choice,
        best: float,
    ) -> tuple[_Choice, str, str] | None:
        consumer = key[0]
        passing = [
            taker
            for taker, _ in graph.takers.get((current.provider, current.output), {}).items()
            if taker[0] != consumer
        ]
        through = {taker[0]: taker[1] for taker in sorted(passing)}
        if best - NEAR_EQUAL > BEST_UNSOURCED:  # only a declared source can come near
            through = {b: d for b, d in through.items() if stream.is_source(b)}
        items = [item for step in sorted(through) for item in run.index.outputs_by_step[step]]
        for level, item in self._options(key, stream, current, best, items):
            if _path(graph.consumers_of, consumer, item.step) is not None:
                continue  # downstream of the consumer: never a backward edge
            new = _Choice(*level, item.step, item.output_name, item)
            reason = (
                f"nearest provider: took {item.step}.{item.output_name} "
                f"({-level[1]:.2f}) over {current.provider}.{current.output} "
                f"({-current.negative_total:.2f}): {item.step} passes it on "
                f"({item.step}.{through[item.step]} <- {current.provider}.{current.output})"
            )
            return new, "nearest provider", reason
        return None

    def _exact(
        self,
        run: _Run,
        graph: _Graph,
        key: Key,
        stream: Candidates,
        current: _Choice,
        best: float,
    ) -> tuple[_Choice, str, str] | None:
        if stream.is_exact_name(current.item):
            return None
        consumer = key[0]
        floor = max(self.threshold, best - NEAR_EQUAL - 1e-9)
        options = self._options(key, stream, current, best, stream.exact_name_items(floor))
        if not options:
            return None
        upstream = _reachable(graph.providers_of, consumer)
        options.sort(key=lambda pair: pair[1].step not in upstream)  # stable: rank within
        for level, item in options:
            if item.step != current.provider and (
                _path(graph.consumers_of, item.step, current.provider) is not None
            ):
                continue  # upstream of the choice on its data path (its own step is not)
            if _path(graph.consumers_of, consumer, item.step) is not None:
                continue  # downstream of the consumer: never a backward edge
            new = _Choice(*level, item.step, item.output_name, item)
            how = (
                "through an alias"
                if current.item.output.logical_name != current.output or current.item.output.aliases
                else "by a similar name"
            )
            reason = (
                f"exact name: took {item.step}.{item.output_name} ({-level[1]:.2f}) over "
                f"{current.provider}.{current.output} ({-current.negative_total:.2f}), "
                f"which matches '{key[1]}' only {how}"
            )
            return new, "exact name", reason
        return None

    def _unresolved_reason(
        self,
        index: OutputIndex,
        key: tuple[str, str],
        skipped: Mapping[tuple[str, str], str] | None,
        miss: NearMiss | None,
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
                    dep,
                    item.output,
                    provider_step=item.step,
                    provider_spec=index.specs[item.step],
                    provider_job=item.job,
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
                        item.output,
                        run.ties.get(key),
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
    names = ", ".join(f"{u.consumer}.{u.dependency}" for u in missing)
    reasons = "; ".join(f"{u.consumer}.{u.dependency}: {u.reason}" for u in missing)
    raise DependencyResolutionError(
        f"unresolved required dependencies in context '{report.context}': {names} ({reasons})",
        report=report,
        hint="see 'regman explain CONTEXT STEP DEPENDENCY' for the candidates",
    )


__all__ = [
    "DEFAULT_THRESHOLD",
    "NEAR_EQUAL",
    "Candidate",
    "DependencyResolver",
    "Explanation",
    "IncompatibleOutput",
    "PropertyReference",
    "ResolutionReport",
    "ResolvedDependency",
    "UnresolvedDependency",
]
