"""Finding and ranking candidate outputs fast: the resolver's index and score bounds.

Outputs are grouped by their evidence and indexed by word and whole name, so a
dependency only looks at outputs that could qualify; exact scores are computed only
when a cheap upper bound says a candidate could still win. Pure, no I/O.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from regman.scoring import (
    ACCEPTED_OUTPUT_TYPES,
    JOB_TYPES,
    TYPE_ONLY_SCORE,
    WEIGHTS,
    DependencyForm,
    data_type_class,
    form_of_dependency,
    form_of_output,
    job_types_of,
    name_form,
    provider_source_keys,
    requested_job_type,
    score_total,
    source_key,
    unexplained,
)
from regman.spec import DependencySpec, DependencyType, OutputSpec, StepSpecification

_Kind = tuple[DependencyType, str]  # (output type, data type class): what a filter accepts


class Provided(NamedTuple):
    step: str
    output_name: str
    output: OutputSpec
    job: str | None
    signature: int


class Signature:
    """Outputs with the same evidence (type, data type, names, keywords) score alike."""

    __slots__ = ("buckets", "form", "kind", "min_weight", "n_keywords", "n_multi", "output_type")

    def __init__(self, output: OutputSpec) -> None:
        self.output_type = output.output_type
        self.kind: _Kind = (output.output_type, data_type_class(output.data_type))
        self.form = form = form_of_output(output)
        # for the cheap upper bound of a score (see Candidates)
        self.min_weight = min(name.weight for name in form.names)
        self.n_keywords = len(form.keywords.all)
        self.n_multi = len(form.keywords.multi)
        # job type -> members sorted by (step, output); filled in sorted order
        self.buckets: dict[str | None, list[Provided]] = {}


class OutputIndex:
    """The given steps' outputs, grouped by signature and indexed by evidence words.

    ``specs`` are the specs as stored; ``self.specs`` are the effective ones, each with
    the variant of its step's job type applied (see ``StepSpecification.for_job_type``).
    """

    def __init__(self, specs: Mapping[str, StepSpecification]) -> None:
        self.stored = specs
        self.jobs = job_types_of(specs)
        self.job_vocabulary = frozenset(JOB_TYPES.union(j for j in self.jobs.values() if j))
        self.specs: dict[str, StepSpecification] = {
            step: spec.for_job_type(self.jobs[step]) for step, spec in specs.items()
        }
        specs = self.specs
        self.signatures: list[Signature] = []
        self.outputs_by_step: dict[str, list[Provided]] = {}
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
        # per (dependency id, job preference): (pending, below) bounds, see Candidates
        self.bounds: dict[tuple[int, Preference], BoundTable] = {}
        # per dependency id: its exact-name signatures as (-total without source, sid)
        self.exact_names: dict[int, list[tuple[float, int]]] = {}
        ids: dict[tuple[Any, ...], int] = {}
        for step in sorted(specs):
            spec = specs[step]
            for names in sorted(provider_source_keys(step, spec, self.jobs[step])):
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
                    signature = Signature(output)
                    self.signatures.append(signature)
                    self.signatures_by_kind.setdefault(signature.kind, []).append(sid)
                    words = self.postings.setdefault(signature.kind, {})
                    for word in signature.form.vocabulary:
                        words.setdefault(word, []).append(sid)
                    compacts = self.compacts.setdefault(signature.kind, {})
                    for compact in {n.compact for n in signature.form.names if n.compact}:
                        compacts.setdefault(compact, []).append(sid)
                signature = self.signatures[sid]
                item = Provided(step, name, output, self.jobs[step], sid)
                signature.buckets.setdefault(item.job, []).append(item)
                self.outputs_by_kind[signature.kind] = (
                    self.outputs_by_kind.get(signature.kind, 0) + 1
                )
                provided.append(item)
            self.outputs_by_step[step] = provided

    @staticmethod
    def kinds(dependency: DependencySpec) -> list[_Kind]:
        return _kinds(dependency.dependency_type, dependency.data_type)

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


@lru_cache(maxsize=256)
def _kinds(dependency_type: DependencyType, data_type: str) -> list[_Kind]:
    """What a dependency's filters accept (cached: read-only for callers)."""
    data_class = data_type_class(data_type)
    return [(kind, data_class) for kind in ACCEPTED_OUTPUT_TYPES[dependency_type]]


class Preference(NamedTuple):
    """Which providers' job types a dependency ranks first (see :func:`tier`)."""

    wanted: str | None  # the job type ranked first, if any
    own: bool  # it is the consumer's own job type (else the dependency's name asks for it)
    fitted: bool  # the dependency takes fitted artifacts (type model_artifacts)
    hinted: str | None = None  # a job type only the keywords name: breaks exact ties


def preference(index: OutputIndex, consumer: str, dep: DependencySpec) -> Preference:
    own = index.jobs[consumer]
    fitted = dep.dependency_type is DependencyType.MODEL_ARTIFACTS
    if own is not None:
        return Preference(own, True, fitted)
    if fitted:
        return Preference(None, False, True)
    asked = requested_job_type(dep, index.job_vocabulary)
    if asked is not None:
        return Preference(asked, False, False)
    return Preference(None, False, False, hinted_job_type(dep, index.job_vocabulary))


def hinted_job_type(dep: DependencySpec, known: frozenset[str]) -> str | None:
    """The one job type the dependency's keywords name (``[data, training]``), if any."""
    return _hinted(tuple(dep.semantic_keywords), known)


@lru_cache(maxsize=1 << 14)
def _hinted(keywords: tuple[str, ...], known: frozenset[str]) -> str | None:
    words: set[str] = set()
    for keyword in keywords:
        words.update(name_form(keyword).tokens)
    hinted = words & known
    return next(iter(hinted)) if len(hinted) == 1 else None


def subtier(preference: Preference, job: str | None) -> int:
    """Among candidates of equal tier and score: a job type the keywords name first, any
    other explicit job type after (never before a higher score: keywords are evidence)."""
    hinted = preference.hinted
    return 1 if hinted is not None and job is not None and job != hinted else 0


def tier(preference: Preference, job: str | None) -> int:
    """Lower goes first. Job types order data flowing down a branch: a step with a job
    type ranks providers of its own job type, then ones without, then others; a
    dependency whose name asks for a job type (its step has none) only puts providers of
    another explicit job type last. Fitted artifacts (``model_artifacts``) cross branches
    on purpose (an evaluation-branch imputation takes what its training twin fitted): a
    provider of the consumer's own job type still goes first, every other one equally."""
    wanted, own, fitted, _ = preference
    if wanted is None or job == wanted:
        return 0
    if fitted:
        return 1
    if job is None:
        return 1 if own else 0
    return 2 if own else 1


class Rank(NamedTuple):
    """A candidate's place, best first: unique by (provider, output), so comparisons never
    reach ``group`` and ``position`` (where the candidate sits in its group)."""

    tier: int
    negative_total: float
    subtier: int
    provider: str
    output: str
    group: int
    position: int

    @property
    def level(self) -> tuple[int, float, int]:
        """Candidates at one level are tied as far as the rules go."""
        return (self.tier, self.negative_total, self.subtier)


# Candidates sharing tier, score and subtier: a signature's members of one job type, or one
# output of a declared compatible source: (tier, -total, subtier, members, from a source)
_Group = tuple[int, float, int, list[Provided], bool]


class NearMiss(NamedTuple):
    total: float
    provider: str
    output: str


_MARGIN = 1e-4  # covers the rounding of totals to 4 places, so bounds stay bounds
#: The best score an output can get without a declared compatible source (every other
#: piece of evidence at its full weight).
BEST_UNSOURCED = (
    1.0
    - (1.0 - WEIGHTS["type"])
    * (1.0 - WEIGHTS["name"])
    * (1.0 - WEIGHTS["dependency_keywords"])
    * (1.0 - WEIGHTS["output_keywords"])
    + _MARGIN
)
_W_TYPE, _W_NAME = WEIGHTS["type"], WEIGHTS["name"]
_W_DEP_KW, _W_OUT_KW = WEIGHTS["dependency_keywords"], WEIGHTS["output_keywords"]


# A pending entry: (tier, -bound, what, payload). ``what`` 0: a class of outputs sharing
# ``payload`` evidence words, not yet bounded one by one; 1: the signature ``payload``.
_Pending = tuple[int, float, int, int]


class BoundTable:
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
        "_threshold",
        "below_classes",
        "initial",
        "preference",
    )

    def __init__(
        self,
        index: OutputIndex,
        dep_form: DependencyForm,
        dep_type: DependencyType,
        kinds: list[_Kind],
        preference: Preference,
        threshold: float,
    ) -> None:
        self._index, self._dep_form, self._dep_type = index, dep_form, dep_type
        self.preference, self._threshold = preference, threshold
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
        threshold, (wanted, own, fitted, _) = self._threshold, self.preference
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
                jobs = signature.buckets  # the best tier among its providers (see tier)
                if wanted is None or wanted in jobs:
                    tier = 0
                elif fitted:
                    tier = 1
                elif own:
                    tier = 1 if None in jobs else 2
                else:
                    tier = 0 if None in jobs else 1
                pending.append((tier, -bound, 1, sid))
        return pending, below


class Candidates:
    """One dependency's qualifying candidates, best first, computed lazily.

    Outputs of declared compatible sources are scored at once (there are few). Other
    outputs sharing evidence words wait in a heap under upper bounds (see BoundTable);
    one is scored exactly only when its bound could beat or tie the best candidate found
    so far. Scored outputs with equal rank form groups; a heap holds each group's next
    member by name.
    """

    __slots__ = (
        "_below",
        "_consumer",
        "_dep_form",
        "_dep_id",
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

    def __init__(
        self, index: OutputIndex, consumer: str, dep: DependencySpec, threshold: float
    ) -> None:
        self._index, self._consumer, self._threshold = index, consumer, threshold
        self._dep_form = form_of_dependency(dep)
        self._dep_type = dep.dependency_type
        self._preferred = preferred = preference(index, consumer, dep)
        self._dep_id = dep_id = index.dependency_id(dep)
        self._scores = index.scores(dep_id)
        self._groups: list[_Group] = []
        self._heap: list[Rank] = []
        self._miss: NearMiss | None = None
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
                    job = item.job
                    self._add((tier(preferred, job), -total, subtier(preferred, job), [item], True))
                elif self._miss is None or (-total, provider) < (
                    -self._miss.total,
                    self._miss.provider,
                ):
                    self._miss = NearMiss(total, provider, item.output_name)

        table = index.bounds.get((dep_id, preferred))
        if table is None:
            table = index.bounds[(dep_id, preferred)] = BoundTable(
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
        tier, negative_total, sub, members, from_source = self._groups[number]
        consumer, sources = self._consumer, self._sources
        for position in range(start, len(members)):
            item = members[position]
            if item.step == consumer or (not from_source and item.step in sources):
                continue  # own outputs never; source providers rank in their own groups
            rank = Rank(tier, negative_total, sub, item.step, item.output_name, number, position)
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
            preferred = self._preferred
            for job, members in self._index.signatures[sid].buckets.items():
                self._add((tier(preferred, job), -total, subtier(preferred, job), members, False))

    @property
    def head(self) -> Rank | None:
        self._settle()
        return self._heap[0] if self._heap else None

    def pop(self) -> Rank:
        self._settle()
        rank: Rank = heapq.heappop(self._heap)
        self._push_next(rank.group, rank.position + 1)
        return rank

    def item(self, rank: Rank) -> Provided:
        return self._groups[rank.group][3][rank.position]

    def rank_of(self, item: Provided) -> tuple[int, float, int]:
        """The level of any output of another step for this dependency (qualifying or
        not: the caller checks the threshold)."""
        preferred = self._preferred
        total = score_total(self._score(item.signature)[0], item.step in self._sources)
        return (tier(preferred, item.job), -total, subtier(preferred, item.job))

    def exact_name_items(self, min_total: float) -> list[Provided]:
        """Outputs of other steps whose logical name (not an alias) is the dependency's
        name once normalised, of an accepted type, that may score ``min_total`` or more;
        sorted by (provider, output). Outputs sharing a signature score alike (but for a
        declared source's bonus), and the signatures are ranked once per dependency
        evidence, so a call looks only at those that reach ``min_total``."""
        compact = self._dep_form.name.compact
        if not compact:
            return []
        index, consumer, sources = self._index, self._consumer, self._sources
        ranked = index.exact_names.get(self._dep_id)
        if min_total > BEST_UNSOURCED:
            ranked = []  # only a declared source can reach it: no need to rank the rest
        elif ranked is None:
            ranked = sorted(
                (-self._score(sid)[1], sid)
                for kind in self._kinds
                for sid in index.compacts.get(kind, {}).get(compact, ())
                if index.signatures[sid].form.names[0].compact == compact
            )
            index.exact_names[self._dep_id] = ranked
        found: list[Provided] = []
        for negative_total, sid in ranked:
            if -negative_total < min_total:
                break
            for members in index.signatures[sid].buckets.values():
                found.extend(m for m in members if m.step != consumer and m.step not in sources)
        for provider in sources:
            for item in index.outputs_by_step[provider]:
                if self.accepts(item) and self.is_exact_name(item):
                    found.append(item)
        return sorted(found, key=lambda m: (m.step, m.output_name))

    def is_alias_match(self, item: Provided) -> bool:
        """Whether one of the output's aliases is the dependency's name (normalised)."""
        compact = self._dep_form.name.compact
        names = self._index.signatures[item.signature].form.names
        return bool(compact) and any(name.compact == compact for name in names[1:])

    def is_exact_name(self, item: Provided) -> bool:
        """Whether the output's logical name is the dependency's (normalised)."""
        compact = self._dep_form.name.compact
        return bool(compact) and self._index.signatures[item.signature].form.names[0].compact == (
            compact
        )

    def is_source(self, step: str) -> bool:
        """Whether ``step`` is a declared compatible source of this dependency."""
        return step in self._sources

    def accepts(self, item: Provided) -> bool:
        """Whether the output's type and data type fit this dependency."""
        return self._index.signatures[item.signature].kind in self._kinds

    def best_upstream(
        self, level: tuple[int, float, int], upstream: set[str]
    ) -> tuple[int, float, str, str, Provided] | None:
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
                preferred = self._preferred
                if (tier(preferred, item.job), -total, subtier(preferred, item.job)) != level:
                    continue
                found = (level[0], level[1], provider, item.output_name, item)
                if best is None or found[2:4] < best[2:4]:
                    best = found
        return best

    def near_miss(self) -> NearMiss | None:
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
            first = first_member(self._index.signatures[sid], self._consumer, self._sources)
            if first is not None and (
                miss is None
                or (-total, first.step, first.output_name)
                < (-miss.total, miss.provider, miss.output)
            ):
                miss = NearMiss(total, first.step, first.output_name)
        return miss


def first_member(signature: Signature, consumer: str, sources: set[str]) -> Provided | None:
    firsts = [
        next((m for m in members if m.step != consumer and m.step not in sources), None)
        for members in signature.buckets.values()
    ]
    present = [m for m in firsts if m is not None]
    return min(present, key=lambda m: (m.step, m.output_name)) if present else None
