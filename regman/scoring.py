"""How well one output fits one dependency: the evidence the resolver ranks candidates by.

Type and data type are *filters*: an incompatible pair has no score at all (``None``).
A compatible pair gets a score in [0, 1] made of independent pieces of evidence, each
bounded by its weight, combined as ``1 - prod(1 - c)``: any single strong piece (an exact
name, a declared compatible source) carries a candidate over the default threshold of
0.5, and every further piece adds confidence without ever passing 1:

==================== ======= ====================================================
component            weight  evidence
==================== ======= ====================================================
type                 0.10    exact type (0.05 for a merely compatible type)
name                 0.50    dependency name vs. the output's name and aliases
dependency_keywords  0.35    the dependency's semantic_keywords found in the output
output_keywords      0.20    the output's semantic_keywords found in the dependency
compatible_source    0.80    provider's step type or step name, with or without a
                             job-type suffix, listed in compatible_sources
==================== ======= ====================================================

A type-only match scores 0.10 and never qualifies. An exact name alone gives 0.55. A
declared compatible source weighs most: with any compatible type it scores at least 0.81,
above the best an undeclared provider can reach (0.766), because an author who names
the steps a dependency comes from has said more than any name can. Names are compared
after normalisation (case, separators, camelCase, plurals, abbreviations such as
params/parameters or eval/evaluation, compounds such as hyper_params), and generic words
(data, input, output, path...) count only in an exact whole-name match: ``input_data``
and ``output_data`` share nothing but filler. Every name is normalised once and cached.

This module depends only on :mod:`regman.spec` and does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from regman.spec import (
    DependencySpec,
    DependencyType,
    OutputSpec,
    StepSpecification,
    normalize_job_type,
)

# -- compatibility filters -------------------------------------------------------------

#: dependency type -> output types it accepts (the first is the exact type)
ACCEPTED_OUTPUT_TYPES: Mapping[DependencyType, tuple[DependencyType, ...]] = {
    DependencyType.TRAINING_DATA: (DependencyType.TRAINING_DATA, DependencyType.PROCESSING_OUTPUT),
    DependencyType.PROCESSING_OUTPUT: (
        DependencyType.PROCESSING_OUTPUT,
        DependencyType.TRAINING_DATA,
    ),
    DependencyType.HYPERPARAMETERS: (
        DependencyType.HYPERPARAMETERS,
        DependencyType.CUSTOM_PROPERTY,
    ),
    DependencyType.PAYLOAD_SAMPLES: (
        DependencyType.PAYLOAD_SAMPLES,
        DependencyType.PROCESSING_OUTPUT,
    ),
    DependencyType.MODEL_ARTIFACTS: (DependencyType.MODEL_ARTIFACTS,),
    DependencyType.CUSTOM_PROPERTY: (DependencyType.CUSTOM_PROPERTY,),
}

_DATA_TYPE_GROUPS = (frozenset({"s3uri", "string"}), frozenset({"integer", "float"}))


def types_compatible(dependency_type: DependencyType, output_type: DependencyType) -> bool:
    """Whether an output of ``output_type`` may feed a dependency of ``dependency_type``."""
    return output_type in ACCEPTED_OUTPUT_TYPES[dependency_type]


def data_type_class(data_type: str) -> str:
    """Two data types are compatible exactly when their classes are equal."""
    folded = data_type.casefold()
    for group in _DATA_TYPE_GROUPS:
        if folded in group:
            return "|".join(sorted(group))
    return folded


def data_types_compatible(dependency_data_type: str, output_data_type: str) -> bool:
    """Equal (ignoring case), or both in S3Uri/String, or both in Integer/Float."""
    return data_type_class(dependency_data_type) == data_type_class(output_data_type)


# -- weights ---------------------------------------------------------------------------

WEIGHTS: Mapping[str, float] = {
    "type": 0.10,
    "name": 0.50,
    "dependency_keywords": 0.35,
    "output_keywords": 0.20,
    "compatible_source": 0.80,
}
COMPATIBLE_TYPE_FACTOR = 0.5  # a compatible (not exact) type is half the type evidence
ALIAS_FACTOR = 0.95  # a match on an alias ranks just below the same match on the name
GENERIC_TOKEN_WEIGHT = 0.3  # filler words still make a name "longer" in the similarity
COMPONENTS: tuple[str, ...] = tuple(WEIGHTS)

#: The best score a candidate can get from its type alone; below any sensible threshold.
TYPE_ONLY_SCORE = WEIGHTS["type"]

# -- name normalisation ----------------------------------------------------------------

_CANONICAL: Mapping[str, str] = {
    "param": "parameter",
    "params": "parameter",
    "parms": "parameter",
    "hyperparam": "hyperparameter",
    "hyperparams": "hyperparameter",
    "hparam": "hyperparameter",
    "hparams": "hyperparameter",
    "eval": "evaluation",
    "evals": "evaluation",
    "config": "configuration",
    "configs": "configuration",
    "cfg": "configuration",
    "conf": "configuration",
    "calib": "calibration",
    "train": "training",
    "test": "testing",
    "preproc": "preprocessing",
    "preprocess": "preprocessing",
    "proc": "processing",
    "pred": "prediction",
    "preds": "prediction",
    "img": "image",
    "imgs": "image",
    "info": "information",
    "stat": "statistic",
    "stats": "statistic",
    "ckpt": "checkpoint",
    "artefact": "artifact",
    "dir": "directory",
    "dirs": "directory",
    "folder": "directory",
    "loc": "location",
}

#: Words that say nothing about *what* flows; they only count in exact whole-name matches.
GENERIC_TOKENS = frozenset(
    {"data", "input", "output", "path", "file", "uri", "s3", "location", "directory", "value"}
)

JOB_TYPES = frozenset({"training", "calibration", "validation", "testing", "inference"})

_WORD_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z0-9]+|[A-Z0-9]+")
_JOB_SUFFIX_RE = re.compile(r"^(?P<base>.+?)[_.-](?P<job>[A-Za-z]+)$")


def _canonical_token(token: str) -> str:
    mapped = _CANONICAL.get(token)
    if mapped is not None:
        return mapped
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is", "as")):
        singular = token[:-1]
        return _CANONICAL.get(singular, singular)
    return token


#: Adjacent tokens that are one word written apart: ``hyper_params`` is ``hyperparameters``.
_COMPOUNDS: Mapping[tuple[str, str], str] = {
    ("hyper", "parameter"): "hyperparameter",
    ("meta", "data"): "metadata",
    ("data", "set"): "dataset",
    ("check", "point"): "checkpoint",
    ("pre", "processing"): "preprocessing",
    ("post", "processing"): "postprocessing",
    ("xg", "boost"): "xgboost",
}


def _merge_compounds(tokens: list[str]) -> tuple[str, ...]:
    merged: list[str] = []
    for token in tokens:
        joined = _COMPOUNDS.get((merged[-1], token)) if merged else None
        if joined is not None:
            merged[-1] = joined
        else:
            merged.append(token)
    return tuple(merged)


class NameForm(NamedTuple):
    """A name normalised once: canonical tokens, their compact join, informative tokens."""

    text: str
    tokens: tuple[str, ...]
    compact: str
    informative: frozenset[str]
    weight: float


@lru_cache(maxsize=1 << 16)
def name_form(name: str) -> NameForm:
    """Normalise ``name`` (cached): ``"HyperParams"`` and ``hyper_parameters`` agree."""
    tokens = _merge_compounds([_canonical_token(w.lower()) for w in _WORD_RE.findall(name)])
    informative = frozenset(t for t in tokens if t not in GENERIC_TOKENS)
    generic = sum(1 for t in tokens if t in GENERIC_TOKENS)
    weight = len(informative) + GENERIC_TOKEN_WEIGHT * generic
    return NameForm(name, tokens, "".join(tokens), informative, weight)


def normalize_name(name: str) -> str:
    """The canonical spelling: ``"ModelEvalParams"`` -> ``model_evaluation_parameter``."""
    return "_".join(name_form(name).tokens)


def name_similarity(a: NameForm, b: NameForm) -> float:
    """1.0 for the same normalised name, else a weighted Dice over informative tokens."""
    if a.compact and a.compact == b.compact:
        return 1.0
    shared = a.informative & b.informative
    if not shared:
        return 0.0
    return min(1.0, 2 * len(shared) / (a.weight + b.weight))


def source_key(name: str) -> str:
    """How a step type or step name is compared with compatible_sources entries."""
    tokens = name_form(name).tokens
    if len(tokens) > 1 and tokens[-1] == "step":
        tokens = tokens[:-1]
    return "".join(tokens)


# -- job types -------------------------------------------------------------------------


def _split_suffix(name: str) -> tuple[str, str] | None:
    """``"Prep_Training"`` -> ``("Prep", "training")``: the last separated word, canonical."""
    match = _JOB_SUFFIX_RE.match(name)
    if match is None:
        return None
    return match["base"], normalize_job_type(match["job"])


def split_job_type(step_name: str) -> tuple[str, str | None]:
    """``"Preprocessing_calibration"`` -> ``("Preprocessing", "calibration")``.

    Only the well-known job types (:data:`JOB_TYPES`) count here, without context;
    :func:`job_types_of` also recognises the open ones a context declares.
    """
    found = _split_suffix(step_name)
    if found is not None and found[1] in JOB_TYPES:
        return found
    return step_name, None


def step_job_type(step_name: str, spec: StepSpecification) -> str | None:
    """A step's job type on its own: ``spec.job_type`` when set, else a well-known
    job-type suffix of its name. Within a context use :func:`job_types_of`."""
    if spec.job_type:
        return normalize_job_type(spec.job_type)
    return split_job_type(step_name)[1]


def job_types_of(specs: Mapping[str, StepSpecification]) -> dict[str, str | None]:
    """Every step's job type, with job types open to any word.

    ``spec.job_type`` wins. Otherwise a name ``<base>_<suffix>`` (also ``-`` or ``.``)
    has job type ``<suffix>`` when the suffix is a well-known job type (training,
    calibration, validation, testing, inference), or a job type the context declares
    (some spec's ``job_type`` or a ``variants`` key), or the base names the step's own
    step type (cursus' ``TabularPreprocessing_evaluation``), or the suffix marks a
    replicated branch: two steps with different bases carry it, and one of those bases
    also carries a job type (``load_finetune``, ``prep_finetune`` beside
    ``load_training``). So ``model_evaluation`` alone is a step name, not an evaluation
    step, and ``data_loading`` beside ``model_loading`` are two loaders. Depends only on
    the set of specs, never on their order.
    """
    declared: set[str] = set(JOB_TYPES)
    bases_by_suffix: dict[str, set[str]] = {}
    suffixes_by_base: dict[str, set[str]] = {}
    for step, spec in specs.items():
        if spec.job_type:
            declared.add(normalize_job_type(spec.job_type))
        declared.update(normalize_job_type(job) for job in spec.variants)
        found = _split_suffix(step)
        if found is not None:
            base = source_key(found[0])
            bases_by_suffix.setdefault(found[1], set()).add(base)
            suffixes_by_base.setdefault(base, set()).add(found[1])
    branches = {
        suffix
        for suffix, bases in bases_by_suffix.items()
        if len(bases) > 1 and any(suffixes_by_base[base] & declared - {suffix} for base in bases)
    }
    declared |= branches
    jobs: dict[str, str | None] = {}
    for step, spec in specs.items():
        if spec.job_type:
            jobs[step] = normalize_job_type(spec.job_type)
            continue
        found = _split_suffix(step)
        job: str | None = None
        if found is not None:
            base, suffix = found
            if suffix in declared or source_key(base) in (
                source_key(spec.step_type),
                source_key(strip_job_suffix(spec.step_type, suffix)),
            ):
                job = suffix
        jobs[step] = job
    return jobs


def strip_job_suffix(name: str, job: str | None = None) -> str:
    """``name`` without a job-type suffix: a well-known one, or ``job``.

    ``TabularPreprocessing_Training``, ``TabularPreprocessing-Training`` and
    ``TabularPreprocessing_training`` all give ``TabularPreprocessing``.
    """
    found = _split_suffix(name)
    if found is not None and (found[1] in JOB_TYPES or (job is not None and found[1] == job)):
        return found[0]
    return name


def provider_source_keys(step_name: str, spec: StepSpecification, job: str | None) -> set[str]:
    """What a provider answers to in ``compatible_sources``: its step type and its step
    name, each also without a job-type suffix."""
    return {
        source_key(spec.step_type),
        source_key(strip_job_suffix(spec.step_type, job)),
        source_key(strip_job_suffix(step_name, job)),
    }


def requested_job_type(
    dependency: DependencySpec, known: frozenset[str] | set[str] = JOB_TYPES
) -> str | None:
    """The one job type a dependency's *name* asks for (``training_data``), if any.

    Keywords never ask: a keyword naming a job type (``inference``) is evidence in the
    score like any other, not a rule that demotes every provider of another job type.
    """
    return _requested(dependency.logical_name, frozenset(known))


@lru_cache(maxsize=1 << 14)
def _requested(logical_name: str, known: frozenset[str]) -> str | None:
    asked = set(name_form(logical_name).tokens) & known
    return next(iter(asked)) if len(asked) == 1 else None


# -- evidence forms --------------------------------------------------------------------


def _keyword_sets(keywords: Iterable[str]) -> tuple[frozenset[str], ...]:
    sets = {name_form(k).informative for k in keywords}
    sets.discard(frozenset())
    return tuple(sorted(sets, key=sorted))


class Keywords(NamedTuple):
    """Normalised keywords; one-word ones (most) as one set so matching is one intersection."""

    all: tuple[frozenset[str], ...]
    single: frozenset[str]
    multi: tuple[frozenset[str], ...]

    @classmethod
    def of(cls, keywords: Iterable[str]) -> Keywords:
        sets = _keyword_sets(keywords)
        single = frozenset(word for k in sets if len(k) == 1 for word in k)
        return cls(sets, single, tuple(k for k in sets if len(k) > 1))


class DependencyForm(NamedTuple):
    name: NameForm
    keywords: Keywords
    vocabulary: frozenset[str]
    keys: frozenset[str]  # index keys: any output sharing evidence shares one of these


class OutputForm(NamedTuple):
    names: tuple[NameForm, ...]  # logical name first, then aliases
    keywords: Keywords
    vocabulary: frozenset[str]
    keys: frozenset[str]


@lru_cache(maxsize=1 << 14)
def dependency_form(logical_name: str, keywords: tuple[str, ...] = ()) -> DependencyForm:
    """The normalised evidence of a dependency (cached by name and keywords)."""
    name = name_form(logical_name)
    keyword_sets = Keywords.of(keywords)
    vocabulary = name.informative.union(*keyword_sets.all)
    keys = vocabulary | {name.compact} if name.compact else vocabulary
    return DependencyForm(name, keyword_sets, vocabulary, frozenset(keys))


@lru_cache(maxsize=1 << 14)
def output_form(
    logical_name: str, aliases: tuple[str, ...] = (), keywords: tuple[str, ...] = ()
) -> OutputForm:
    """The normalised evidence of an output (cached by name, aliases and keywords)."""
    names = tuple(name_form(n) for n in (logical_name, *aliases))
    keyword_sets = Keywords.of(keywords)
    vocabulary = frozenset().union(*(n.informative for n in names), *keyword_sets.all)
    keys = vocabulary | {n.compact for n in names if n.compact}
    return OutputForm(names, keyword_sets, vocabulary, frozenset(keys))


def form_of_dependency(dependency: DependencySpec) -> DependencyForm:
    return dependency_form(dependency.logical_name, tuple(dependency.semantic_keywords))


def form_of_output(output: OutputSpec) -> OutputForm:
    return output_form(output.logical_name, tuple(output.aliases), tuple(output.semantic_keywords))


class Evidence(NamedTuple):
    """Per-component contributions (each in [0, its weight]) and the best-matching name."""

    type: float
    name: float
    dependency_keywords: float
    output_keywords: float
    matched_name: int  # index into OutputForm.names, -1 when no name matched


_W_TYPE, _W_NAME = WEIGHTS["type"], WEIGHTS["name"]
_W_DEP_KW, _W_OUT_KW = WEIGHTS["dependency_keywords"], WEIGHTS["output_keywords"]


def _keyword_evidence(keywords: Keywords, vocabulary: frozenset[str], weight: float) -> float:
    """Share of one side's keywords found in the other side's words, as evidence."""
    if not keywords.all:
        return 0.0
    found = len(keywords.single & vocabulary)
    found += sum(1 for words in keywords.multi if words <= vocabulary)
    return weight * (0.5 + 0.5 * found / len(keywords.all)) if found else 0.0


def _components(
    dependency: DependencyForm, output: OutputForm, exact_type: bool
) -> tuple[float, float, float, float, int]:
    """The hot path: the four source-independent components and the matched name index."""
    mine = dependency.name
    best, best_index = 0.0, -1
    for index, candidate in enumerate(output.names):
        if mine.compact and mine.compact == candidate.compact:
            similarity = 1.0
        else:
            shared = mine.informative & candidate.informative
            if not shared:
                continue
            similarity = min(1.0, 2 * len(shared) / (mine.weight + candidate.weight))
        if index:
            similarity *= ALIAS_FACTOR
        if similarity > best:
            best, best_index = similarity, index
    dependency_keywords = _keyword_evidence(dependency.keywords, output.vocabulary, _W_DEP_KW)
    output_keywords = _keyword_evidence(output.keywords, dependency.vocabulary, _W_OUT_KW)
    return (
        _W_TYPE if exact_type else _W_TYPE * COMPATIBLE_TYPE_FACTOR,
        _W_NAME * best,
        dependency_keywords,
        output_keywords,
        best_index,
    )


def evidence(dependency: DependencyForm, output: OutputForm, exact_type: bool) -> Evidence:
    """The source-independent components for one compatible pair."""
    return Evidence(*_components(dependency, output, exact_type))


def unexplained(dependency: DependencyForm, output: OutputForm, exact_type: bool) -> float:
    """``prod(1 - c)`` over the source-independent components: what the resolver caches.

    ``score_total(unexplained(...), matched)`` equals ``combine(evidence(...), matched)`` exactly
    (same operations in the same order), so the index and :func:`score_candidate` agree.
    """
    c = _components(dependency, output, exact_type)
    return (1.0 - c[0]) * (1.0 - c[1]) * (1.0 - c[2]) * (1.0 - c[3])


def score_total(remaining: float, source_matched: bool) -> float:
    """The score left by ``remaining = prod(1 - c)``, rounded so equal evidence ties exactly."""
    if source_matched:
        remaining *= 1.0 - WEIGHTS["compatible_source"]
    return round(1.0 - remaining, 4)


def combine(evidence: Evidence, source_matched: bool) -> float:
    """``1 - prod(1 - c)`` over the components (with the source's when it matched)."""
    remaining = (
        (1.0 - evidence.type)
        * (1.0 - evidence.name)
        * (1.0 - evidence.dependency_keywords)
        * (1.0 - evidence.output_keywords)
    )
    return score_total(remaining, source_matched)


def source_matches(
    dependency: DependencySpec,
    provider_step: str,
    provider_spec: StepSpecification,
    provider_job: str | None = None,
) -> str | None:
    """The compatible_sources entry naming this provider (its step type or step name,
    with or without a job-type suffix), if any."""
    if not dependency.compatible_sources:
        return None
    wanted = provider_source_keys(provider_step, provider_spec, provider_job)
    for source in dependency.compatible_sources:
        if source_key(source) in wanted:
            return source
    return None


# -- the public score ------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """A candidate's score: ``total`` in [0, 1], each component's share, and why."""

    total: float
    components: Mapping[str, float] = field(hash=False)
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.total <= 1.0:
            raise ValueError(f"score total {self.total} is outside [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "components": {k: round(v, 4) for k, v in self.components.items()},
            "reasons": list(self.reasons),
        }


def score_candidate(
    dependency: DependencySpec,
    output: OutputSpec,
    *,
    provider_step: str,
    provider_spec: StepSpecification,
    provider_job: str | None = None,
) -> Score | None:
    """Score ``output`` of ``provider_step`` as a source for ``dependency``.

    ``provider_job`` is the provider's job type in its context (:func:`job_types_of`),
    used to strip a job-type suffix from its step type; by default, its own.

    None when the type or data type is incompatible (a filter, not a low score).
    The resolver computes the same totals from cached forms; this builds the reasons.
    """
    if not types_compatible(dependency.dependency_type, output.output_type):
        return None
    if not data_types_compatible(dependency.data_type, output.data_type):
        return None
    dep_form, out_form = form_of_dependency(dependency), form_of_output(output)
    exact = dependency.dependency_type == output.output_type
    ev = evidence(dep_form, out_form, exact)
    if provider_job is None:
        provider_job = step_job_type(provider_step, provider_spec)
    source = source_matches(dependency, provider_step, provider_spec, provider_job)
    total = combine(ev, source is not None)
    components = {
        "type": ev.type,
        "name": ev.name,
        "dependency_keywords": ev.dependency_keywords,
        "output_keywords": ev.output_keywords,
        "compatible_source": WEIGHTS["compatible_source"] if source is not None else 0.0,
    }
    reasons = [
        f"{'exact' if exact else 'compatible'} type {output.output_type.value}"
        + ("" if exact else f" for {dependency.dependency_type.value}")
    ]
    if ev.matched_name >= 0:
        matched = out_form.names[ev.matched_name].text
        kind = "name" if ev.matched_name == 0 else "alias"
        similarity = ev.name / WEIGHTS["name"] / (ALIAS_FACTOR if ev.matched_name else 1.0)
        how = "same name" if similarity >= 1.0 else f"similar name ({similarity:.2f})"
        reasons.append(f"{how}: '{dependency.logical_name}' ~ {kind} '{matched}'")
    for label, keywords, vocabulary in (
        ("dependency keywords found in the output", dep_form.keywords, out_form.vocabulary),
        ("output keywords found in the dependency", out_form.keywords, dep_form.vocabulary),
    ):
        found = [k for k in keywords.all if k <= vocabulary]
        if found:
            words = ", ".join("_".join(sorted(k)) for k in found)
            reasons.append(f"{label}: {words} ({len(found)}/{len(keywords.all)})")
    if source is not None:
        reasons.append(
            f"provider '{provider_step}' ({provider_spec.step_type}) is in "
            f"compatible_sources as '{source}'"
        )
    elif len(reasons) == 1:
        reasons.append("no name, alias, keyword or compatible_sources evidence")
    return Score(total, components, tuple(reasons))


__all__ = [
    "ACCEPTED_OUTPUT_TYPES",
    "COMPONENTS",
    "GENERIC_TOKENS",
    "JOB_TYPES",
    "TYPE_ONLY_SCORE",
    "WEIGHTS",
    "DependencyForm",
    "Evidence",
    "Keywords",
    "NameForm",
    "OutputForm",
    "Score",
    "combine",
    "data_type_class",
    "data_types_compatible",
    "dependency_form",
    "evidence",
    "form_of_dependency",
    "form_of_output",
    "job_types_of",
    "name_form",
    "name_similarity",
    "normalize_job_type",
    "normalize_name",
    "output_form",
    "provider_source_keys",
    "requested_job_type",
    "score_candidate",
    "score_total",
    "source_key",
    "source_matches",
    "split_job_type",
    "step_job_type",
    "strip_job_suffix",
    "types_compatible",
    "unexplained",
]
