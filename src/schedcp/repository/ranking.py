"""Query expansion and ranking for `PolicyRepository.search` (pure functions, no database;
`search.py` holds the full-text index and runs the query).

A query is free text and/or a workload profile (`WorkloadQuery`: classes and features). It is
turned into
- search terms for the full-text index: the query's words, their synonyms from the small
  table below, the query's workload classes and the terms its features stand for;
- query classes with a weight: classes given explicitly (a profile's classes) weigh
  EXPLICIT_CLASS; classes suggested by a word of the text (CLASS_HINTS) or by a feature
  (FEATURE_HINTS), or a hyphenated word of the text, weigh HINTED_CLASS.

Score of a policy = text + class - penalty, where
- text = its full-text relevance divided by the best relevance among the hits (so 0..1; the
  engine weighs name and workload classes above summary/description above README; under
  MIN_TEXT it counts as no text match);
- class = for each query class, its weight x the best match among the policy's
  `workload_classes`, summed;
- penalty = the same sum over the policy's `unsuited_classes`.
A class matches exactly (1.0) or by family (FAMILY_MATCH: one name is the other plus
hyphenated words, e.g. `latency-critical` and `latency-critical-server`).
Hits are the policies with some text or class match, best score first (ties: by name). A
policy that matches the words but declares itself unsuited for the query's classes keeps its
place in the list, below, with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

W_TEXT = 1.0
EXPLICIT_CLASS = 1.0
HINTED_CLASS = 0.5
FAMILY_MATCH = 0.6
UNSUITED = 1.0
MIN_TEXT = 0.01  # text relevance under 1% of the best hit's is noise, not a match

_STOPWORDS = (
    "a an and any are as at be best by do for from good how i in is it me my need needs of on or our "
    "policy scheduler schedulers scheduling should so some that the this to use very want we what which with "
    "workload workloads"
)
STOPWORDS = frozenset(_STOPWORDS.split())

# Query word -> extra search terms. Small on purpose: everyday words for the workload classes
# the analysis engine and the benchmark workloads name (see docs/repository.md).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "latency": ("latency-critical", "responsive", "wakeup"),
    "responsive": ("latency", "interactive"),
    "snappy": ("latency", "interactive"),
    "interactive": ("latency-critical", "desktop", "responsive"),
    "desktop": ("interactive",),
    "web": ("server", "request-response", "latency-critical"),
    "http": ("web", "server", "request-response"),
    "server": ("request-response", "service"),
    "service": ("server",),
    "request": ("request-response", "latency"),
    "rpc": ("request-response", "server"),
    "database": ("server", "request-response"),
    "batch": ("throughput", "cpu-bound"),
    "throughput": ("batch",),
    "build": ("compile", "fork-heavy"),
    "compile": ("build",),
    "fair": ("fairness", "weighted"),
    "fairness": ("fair", "weighted"),
    "cache": ("locality",),
    "locality": ("cache",),
    "realtime": ("periodic", "deadline"),
    "periodic": ("deadline", "realtime"),
    "audio": ("periodic", "realtime", "latency"),
    "tail": ("long-tail", "skewed"),
    "messaging": ("pipe", "pipeline"),
    "tenant": ("multi-tenant", "cgroup", "fairness"),
    "multi-tenant": ("tenant", "cgroup", "container", "weighted"),
    "container": ("cgroup", "multi-tenant", "tenant"),
    "cgroup": ("multi-tenant", "container", "weighted"),
    "kubernetes": ("container", "multi-tenant"),
}

# Query word -> workload classes it suggests (weight HINTED_CLASS); every one a WorkloadClass
# (schedcp.models.vocabulary), which a test checks.
CLASS_HINTS: dict[str, tuple[str, ...]] = {
    "latency": ("latency-critical-server",),
    "responsive": ("latency-critical-server",),
    "interactive": ("mixed-interactive-batch", "latency-critical-server"),
    "desktop": ("mixed-interactive-batch",),
    "web": ("latency-critical-server",),
    "http": ("latency-critical-server",),
    "server": ("latency-critical-server",),
    "request": ("latency-critical-server",),
    "rpc": ("latency-critical-server",),
    "database": ("latency-critical-server",),
    "batch": ("cpu-bound-batch",),
    "throughput": ("cpu-bound-batch",),
    "build": ("fork-heavy-build",),
    "compile": ("fork-heavy-build",),
    "periodic": ("periodic-soft-realtime",),
    "realtime": ("periodic-soft-realtime",),
    "audio": ("periodic-soft-realtime",),
    "tail": ("batch-long-tail",),
    "mixed": ("mixed-interactive-batch",),
    "messaging": ("pipeline-messaging",),
    "pipeline": ("pipeline-messaging",),
    "tenant": ("multi-tenant",),
    "multi-tenant": ("multi-tenant",),
    "container": ("multi-tenant",),
    "cgroup": ("multi-tenant",),
    "kubernetes": ("multi-tenant",),
}

# Workload-profile feature -> (search terms, suggested classes). Unknown features are searched as text.
FEATURE_HINTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "frequent-wakeups": (("wakeup", "latency"), ("latency-critical-server",)),
    "short-bursts": (("short", "wakeup", "latency"), ("latency-critical-server",)),
    "request-response": (("request-response", "latency"), ("latency-critical-server",)),
    "cpu-bound": (("throughput", "batch"), ("cpu-bound-batch",)),
    "fork-heavy": (("fork", "build"), ("fork-heavy-build",)),
    "skewed-job-lengths": (("long-tail", "shortest", "skewed"), ("batch-long-tail",)),
    "periodic": (("periodic", "deadline"), ("periodic-soft-realtime",)),
    "cache-sensitive": (("cache", "locality"), ()),
    "oversubscribed": (("oversubscription", "fair", "fairness"), ()),
    "io-bound": (("io", "wakeup"), ("io-bound",)),
    "pipe-ipc": (("pipe", "messaging"), ("pipeline-messaging",)),
    "multi-cgroup": (("cgroup", "multi-tenant", "weighted"), ("multi-tenant",)),
}

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Lower-case words and hyphenated compounds, in order, without stop words or repeats."""
    seen: dict[str, None] = {}
    for w in _WORD.findall(text.lower()):
        if w not in STOPWORDS:
            seen.setdefault(w, None)
    return list(seen)


def base(word: str) -> str:
    """A crude stem for table look-ups and for explaining matches (the engines stem properly)."""
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ers", "er"), ("es", "e"), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: len(word) - len(suffix)] + repl
    return word


def _lookup(table: dict[str, tuple[str, ...]], word: str) -> tuple[str, ...]:
    return table.get(word) or table.get(base(word)) or ()


@dataclass
class QueryPlan:
    words: list[str]
    terms: list[str]
    classes: dict[str, float] = field(default_factory=dict)
    class_source: dict[str, str] = field(default_factory=dict)

    def add_class(self, cls: str, weight: float, source: str) -> None:
        if weight > self.classes.get(cls, 0.0):
            self.classes[cls] = weight
            self.class_source[cls] = source


def plan(text: str, classes: Iterable[str] = (), features: Iterable[str] = ()) -> QueryPlan:
    ws = words(text)
    terms: dict[str, None] = dict.fromkeys(ws)
    p = QueryPlan(words=ws, terms=[])
    for w in ws:
        terms.update(dict.fromkeys(_lookup(SYNONYMS, w)))
        for cls in _lookup(CLASS_HINTS, w):
            p.add_class(cls, HINTED_CLASS, f"from {w!r}")
        if "-" in w:
            p.add_class(w, HINTED_CLASS, f"from {w!r}")
    for feature in (f.strip().lower() for f in features):
        if not feature:
            continue
        extra, hinted = FEATURE_HINTS.get(feature, (tuple(words(feature)), ()))
        terms.update(dict.fromkeys(extra))
        for cls in hinted:
            p.add_class(cls, HINTED_CLASS, f"feature {feature}")
    for cls in (c.strip().lower() for c in classes):
        if cls:
            terms.setdefault(cls, None)
            p.add_class(cls, EXPLICIT_CLASS, "profile class")
    for cls in list(p.classes):
        terms.setdefault(cls, None)
    p.terms = list(terms)
    return p


def class_match(query_class: str, policy_class: str) -> float:
    a, b = query_class.lower(), policy_class.lower()
    if a == b:
        return 1.0
    if a.startswith(b + "-") or b.startswith(a + "-"):
        return FAMILY_MATCH
    return 0.0


def best_class(query_class: str, policy_classes: Iterable[str]) -> tuple[float, str | None]:
    best: tuple[float, str | None] = (0.0, None)
    for pc in policy_classes:
        m = class_match(query_class, pc)
        if m > best[0]:
            best = (m, pc)
    return best


@dataclass
class Candidate:
    policy_id: int
    name: str
    version: str
    label: str
    summary: str
    description: str
    readme: str
    workload_classes: list[str]
    unsuited_classes: list[str]


@dataclass
class Scored:
    candidate: Candidate
    score: float
    text_score: float
    class_score: float
    penalty: float
    matched_terms: list[str]
    matched_fields: list[str]
    matched_classes: list[str]
    unsuited_matched: list[str]
    reasons: list[str]


def _field_words(text: str) -> set[str]:
    return {base(w) for w in re.findall(r"[a-z0-9]+", text.lower())}


def explain_text(p: QueryPlan, c: Candidate) -> tuple[list[str], list[str]]:
    """Which query terms appear in which fields (crude stemming: an explanation, not the ranking)."""
    fields = {
        "name": _field_words(c.name.replace("_", " ")),
        "classes": _field_words(" ".join(c.workload_classes)),
        "summary": _field_words(c.summary + " " + c.description),
        "readme": _field_words(c.readme),
    }
    matched_terms: list[str] = []
    matched_fields: list[str] = []
    for term in p.terms:
        parts = [base(x) for x in term.split("-")]
        hit = [f for f, ws in fields.items() if all(x in ws for x in parts)]
        if hit:
            matched_terms.append(term)
            matched_fields.extend(f for f in hit if f not in matched_fields)
    return matched_terms, matched_fields


def rank(p: QueryPlan, candidates: list[Candidate], text_raw: dict[int, float]) -> list[Scored]:
    best_text = max((v for v in text_raw.values() if v > 0), default=0.0)
    out: list[Scored] = []
    for c in candidates:
        raw = text_raw.get(c.policy_id, 0.0)
        text = W_TEXT * raw / best_text if best_text > 0 and raw > 0 else 0.0
        text = text if text >= MIN_TEXT else 0.0
        class_score = penalty = 0.0
        matched: list[str] = []
        unsuited: list[str] = []
        reasons: list[str] = []
        for qc, weight in p.classes.items():
            m, pc = best_class(qc, c.workload_classes)
            if pc is not None:
                class_score += weight * m
                if pc not in matched:
                    matched.append(pc)
                how = "" if m == 1.0 else f" (family of {qc})"
                reasons.append(f"suits {pc}{how}, {p.class_source[qc]}: +{weight * m:.2f}")
            m, pc = best_class(qc, c.unsuited_classes)
            if pc is not None:
                penalty += UNSUITED * weight * m
                if pc not in unsuited:
                    unsuited.append(pc)
                how = "" if m == 1.0 else f" (family of {qc})"
                reasons.append(f"declared unsuited for {pc}{how}, {p.class_source[qc]}: -{UNSUITED * weight * m:.2f}")
        if text <= 0 and class_score <= 0:
            continue
        terms, fields = explain_text(p, c)
        if text > 0:
            where = f" in {', '.join(fields)}" if fields else ""
            reasons.insert(0, f"text match{where} ({', '.join(terms[:6]) or 'stemmed terms'}): +{text:.2f}")
        out.append(
            Scored(
                c, text + class_score - penalty, text, class_score, penalty, terms, fields, matched, unsuited, reasons
            )
        )
    out.sort(key=lambda s: (-s.score, s.candidate.name))
    return out
