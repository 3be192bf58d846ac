"""Conversations: a follow-up question answered with the turns before it in view.

"And which photos show the harbour?" means nothing alone. Before searching, a follow-up is made
standalone from the history:

- a model backend condenses the recent turns and the new question into one standalone question
  (temperature 0, one answer), as chat engines do;
- the extractive backend has no model to ask, so the question keeps the earlier questions'
  subject words as extra search terms: a boost, never a filter (BM25 and the embeddings rank
  with them, nothing is required to hold them), so a new subject still finds new evidence.

What earlier turns cited stays a candidate: it is scored against the standalone question with
every signal and ranked like anything the search found, so "what else does it say?" can come
back to it, and a new subject is free to leave it behind.

The answer is then generated from the standalone question, the evidence and the last turns,
checked and cited as any answer is, and recorded in the catalog for its owner.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from spyglass.errors import SpyglassError
from spyglass.generator.backends import Backend, GenerationParams, Request
from spyglass.words import BM25_STOP_WORDS, STOP_WORDS, fold

if TYPE_CHECKING:
    from spyglass.generator.generator import Answer
    from spyglass.store import Store

LOCAL = "local"  # the owner of conversations held without an API key (the shell, stdio MCP, a keyless server)
HISTORY_TURNS = 2  # the turns a model sees, and whose subject words a follow-up carries
CONDENSE = (
    "Rewrite the user's last question as one standalone question that can be understood without "
    "the conversation: replace pronouns and references with what they refer to in the earlier "
    "turns. Keep its language. Reply with the question only."
)
# Words that ask rather than name a subject: never carried to the next question.
ASKING = STOP_WORDS | BM25_STOP_WORDS | frozenset("many much about tell say said does use used".split())


class ConversationNotFound(SpyglassError):
    """A conversation id that does not exist for this key (another key's looks the same)."""


@dataclass(frozen=True)
class Turn:
    question: str
    standalone: str
    answer: str
    cited: tuple[int, ...] = ()  # the items its answer cited: candidates of every later turn


def subject_words(text: str) -> list[str]:
    """The words of ``text`` that name something, in order, once each."""
    found = [word for word in re.findall(r"\w+", text) if fold(word) not in ASKING and not word.isdigit()]
    return list(dict.fromkeys(found))


def standalone(question: str, turns: Sequence[Turn], backend: Backend) -> str:
    """``question`` made understandable without ``turns`` (see the module docstring)."""
    recent = list(turns)[-HISTORY_TURNS:]
    if not recent:
        return question
    if backend.condenses:
        messages: list[dict] = [{"role": "system", "content": CONDENSE}, *history_messages(recent)]
        messages.append({"role": "user", "content": question})
        params = GenerationParams(max_tokens=200, temperature=0.0, n=1)
        rewritten = backend.generate(Request(question, [], messages, params)).strip()
        return rewritten or question
    seen = {fold(word) for word in subject_words(question)}
    carried = []
    for turn in reversed(recent):  # the latest turn's subject first
        for word in subject_words(turn.question):
            if fold(word) not in seen:
                seen.add(fold(word))
                carried.append(word)
    return f"{question} {' '.join(carried)}" if carried else question


def history_messages(turns: Sequence[Turn]) -> list[dict]:
    """The last turns as chat messages: each question, then the answer given."""
    messages: list[dict] = []
    for turn in list(turns)[-HISTORY_TURNS:]:
        messages += [
            {"role": "user", "content": turn.question},
            {"role": "assistant", "content": turn.answer},
        ]
    return messages


@dataclass(frozen=True)
class Conversation:
    """One owner's conversation in a collection's catalog: its turns, and recording the next one."""

    store: Store
    id: str
    owner: str

    @classmethod
    def start(cls, store: Store, owner: str, keep_days: float) -> Conversation:
        """A new conversation; those idle for ``keep_days`` are deleted first."""
        store.expire_conversations(keep_days)
        return cls(store, store.start_conversation(owner), owner)

    def turns(self) -> list[Turn]:
        found = self.store.conversation(self.id, self.owner)
        if found is None:
            raise ConversationNotFound(f"there is no conversation {self.id}")
        return [
            Turn(
                t["question"],
                t["standalone"],
                t["answer"]["answer"],
                tuple(c["item_id"] for c in t["answer"]["citations"]),
            )
            for t in found["turns"]
        ]

    def record(self, question: str, answer: Answer) -> Answer:
        """Store the turn (all candidates with it) and return the answer marked with its place."""
        marked = replace(answer, question=question, standalone=answer.question, conversation_id=self.id)
        turn = {"question": question, "standalone": answer.question, "answer": marked.public()}
        position = self.store.add_turn(self.id, self.owner, turn)
        if position is None:
            raise ConversationNotFound(f"there is no conversation {self.id}")
        return replace(marked, turn=position)

    def recorded(self, question: str, events: Iterator) -> Iterator:
        """A streamed answer's events, the final answer recorded before it is handed on."""
        from spyglass.generator.generator import Answer

        for event in events:
            yield self.record(question, event) if isinstance(event, Answer) else event
