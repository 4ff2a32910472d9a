"""A schema's labelling rules compiled into one matcher: one pass over an article's words gives every rule's vote.

An article is its title and its text, each split into sentences as the sentence encoder splits them (. ! ? ؟ ؛ and
line breaks); the title's sentences come first. A rule counts its matches in the article (`scope: article`), its
lead (`scope: lead`: the title and the text's first LEAD_SENTENCES sentences, where news puts what it reports) or
the title alone (`scope: title`), and votes its label when the count reaches `min_count`:

- `keywords`: occurrences of any of its terms (whole words, proclitics allowed: see `train.weak.terms`);
- `regex`: matches of the pattern in the normalized title and text (joined by a line break);
- `cooccur`: sentences that name at least `distinct` different entries of the gazetteer and hold one of the terms
  (and one of the `also` terms, when given).

A rule with `absent: true` votes where the count stays below `min_count` instead.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from train.schema import Rule, Schema, Task
from train.text.sentences import split_sentences
from train.weak.gazetteer import Gazetteer
from train.weak.label_model import ABSTAIN
from train.weak.terms import WORD, PhraseIndex, normalize

LEAD_SENTENCES = 2


@dataclass(frozen=True)
class _Compiled:
    """A rule ready to count: its label's index, its terms' group, its gazetteer's group, its pattern."""

    rule: Rule
    label: int
    group: int | None = None
    gazetteer: int | None = None
    also: int | None = None
    pattern: re.Pattern[str] | None = None


@dataclass
class _Sentence:
    """What one sentence holds: matches per term group, entry codes per gazetteer group; the scopes it is in."""

    scopes: frozenset[str]
    counts: dict[int, int]
    codes: dict[int, set[str]]


class RuleSet:
    """The rules of every task that has some, compiled once; `vote` applies them to one article.

    `gazetteer(name)` gives a gazetteer the rules name (a loaded schema's `Schema.gazetteer`).
    """

    def __init__(self, tasks: list[Task], gazetteer: Callable[[str], Gazetteer]):
        self.tasks: list[Task] = [task for task in tasks if task.rules]
        self._index = PhraseIndex()
        self._groups = 0  # each rule's terms and each gazetteer are a group of the index: matched independently
        self._gazetteer_groups: dict[str, int] = {}
        self._compiled = {task.name: [self._compile(gazetteer, task, rule) for rule in task.rules]
                          for task in self.tasks}

    @classmethod
    def of(cls, schema: Schema) -> RuleSet:
        """The rules of a schema loaded from its file (with its gazetteers)."""
        return cls(schema.tasks, schema.gazetteer)

    def _compile(self, gazetteer: Callable[[str], Gazetteer], task: Task, rule: Rule) -> _Compiled:
        label = task.label_names.index(rule.label)
        if rule.regex is not None:
            return _Compiled(rule, label, pattern=re.compile(normalize(rule.regex)))
        group = self._next_group()
        terms = rule.keywords if rule.keywords is not None else rule.cooccur.terms
        self._index.add_terms(terms, group)
        if rule.keywords is not None:
            return _Compiled(rule, label, group=group)
        also = None
        if rule.cooccur.also:
            also = self._next_group()
            self._index.add_terms(rule.cooccur.also, also)
        return _Compiled(rule, label, group=group, gazetteer=self._gazetteer_group(gazetteer, rule.cooccur.gazetteer),
                         also=also)

    def _next_group(self) -> int:
        self._groups += 1
        return self._groups

    def _gazetteer_group(self, gazetteer: Callable[[str], Gazetteer], name: str) -> int:
        if name not in self._gazetteer_groups:
            group = self._gazetteer_groups[name] = self._next_group()
            gazetteer(name).add_to(self._index, group)
        return self._gazetteer_groups[name]

    def vote(self, title: str, text: str) -> dict[str, list[int]]:
        """Each task's votes on one article, one per rule in schema order: a label's index, or ABSTAIN (-1).

        The title and text are normalized here (again, when a TextPipeline already did: it costs little).
        """
        title, text = normalize(title or ""), normalize(text or "")
        sentences = self._sentences(title, True) + self._sentences(text, False)
        return {task: [self._vote(rule, sentences, title, text) for rule in rules]
                for task, rules in self._compiled.items()}

    def _sentences(self, text: str, in_title: bool) -> list[_Sentence]:
        """The sentences of `text` that hold a match (the others cannot change a vote)."""
        found = []
        gazetteers = set(self._gazetteer_groups.values())
        sentences = [WORD.findall(sentence) for sentence in split_sentences(text, sys.maxsize)]
        for number, matches in enumerate(self._index.find_each(sentences)):
            counts: dict[int, int] = {}
            codes: dict[int, set[str]] = {}
            for group, payload in matches:
                if group not in gazetteers:
                    counts[group] = counts.get(group, 0) + 1
                elif payload is not None:
                    codes.setdefault(group, set()).add(payload)
            if counts:
                found.append(_Sentence(_scopes(in_title, number), counts, codes))
        return found

    @staticmethod
    def _vote(compiled: _Compiled, sentences: list[_Sentence], title: str, text: str) -> int:
        rule = compiled.rule
        if compiled.pattern is not None:
            scoped = title if rule.scope == "title" else f"{title}\n{_lead(text) if rule.scope == 'lead' else text}"
            count = sum(1 for _ in compiled.pattern.finditer(scoped))
        else:
            scoped = [s for s in sentences if rule.scope in s.scopes]
            if compiled.gazetteer is None:
                count = sum(s.counts.get(compiled.group, 0) for s in scoped)
            else:
                count = sum(1 for s in scoped if s.counts.get(compiled.group)
                            and (compiled.also is None or s.counts.get(compiled.also))
                            and len(s.codes.get(compiled.gazetteer, ())) >= rule.cooccur.distinct)
        return compiled.label if (count >= rule.min_count) != rule.absent else ABSTAIN


def _scopes(in_title: bool, number: int) -> frozenset[str]:
    """The scopes a sentence belongs to: every one for the title's, `lead` too for the text's first ones."""
    if in_title:
        return frozenset(("article", "lead", "title"))
    return frozenset(("article", "lead")) if number < LEAD_SENTENCES else frozenset(("article",))


def _lead(text: str) -> str:
    """The text's first LEAD_SENTENCES sentences, for regular expressions."""
    return "\n".join(split_sentences(text, LEAD_SENTENCES))
