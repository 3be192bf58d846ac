"""Conversations and their turns: follow-up questions, each owned by one key's fingerprint.

Every read and write names the owner, so a conversation is invisible to any other key: the
same "not found" as one that does not exist. A turn's ``turn_sources`` name the items it quotes,
so deleting one of them makes the turn forget what it quoted (migration v12's trigger).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from spyglass.store.catalog.base import CatalogBase, Records
from spyglass.store.schema import conversations, turn_sources, turns


def shown_items(answer: dict[str, Any]) -> set[int]:
    """The items a public answer quotes: cited, shown uncited, and in its other candidates."""
    pieces = [*answer.get("citations", []), *answer.get("uncited", [])]
    found = {piece["item_id"] for piece in pieces if piece.get("item_id") is not None}
    for candidate in answer.get("candidates", []):
        found |= shown_items(candidate)
    return found


class ConversationWrites(Records):
    """Conversations started, continued and deleted inside one transaction."""

    def start_conversation(self, conversation_id: str, owner: str, now: float) -> None:
        self._conn.execute(
            conversations.insert().values(id=conversation_id, owner=owner, created=now, updated=now)
        )

    def add_turn(self, conversation_id: str, owner: str, turn: dict[str, Any], now: float) -> int | None:
        """Append a turn (question, standalone, answer: the public answer); its position, or None when
        the owner has no such conversation."""
        owned = conversations.c.id == conversation_id, conversations.c.owner == owner
        if self._conn.execute(select(conversations.c.id).where(*owned)).first() is None:
            return None
        position = self._conn.execute(
            select(func.coalesce(func.max(turns.c.position), 0) + 1).where(
                turns.c.conversation_id == conversation_id
            )
        ).scalar_one()
        self._conn.execute(
            turns.insert().values(
                conversation_id=conversation_id,
                position=position,
                question=turn["question"],
                standalone=turn["standalone"],
                answer=json.dumps(turn["answer"]),
                created=now,
            )
        )
        sources = shown_items(turn["answer"])
        if sources:
            self._conn.execute(
                turn_sources.insert(),
                [{"item_id": i, "conversation_id": conversation_id, "position": position} for i in sources],
            )
        self._conn.execute(conversations.update().where(*owned).values(updated=now))
        return position

    def delete_conversation(self, conversation_id: str, owner: str) -> bool:
        deleted = self._conn.execute(
            conversations.delete().where(
                conversations.c.id == conversation_id, conversations.c.owner == owner
            )
        )
        return deleted.rowcount > 0

    def expire_conversations(self, before: float) -> int:
        """Delete the conversations not continued since ``before`` (epoch seconds); how many."""
        return self._conn.execute(conversations.delete().where(conversations.c.updated < before)).rowcount


class Conversations(CatalogBase):
    """Conversations read back, for their owner only."""

    def conversations(self, owner: str) -> list[dict]:
        """The owner's conversations, latest first: id, created, updated, turns and the first question."""
        first = (
            select(turns.c.question)
            .where(turns.c.conversation_id == conversations.c.id, turns.c.position == 1)
            .scalar_subquery()
        )
        count = select(func.count()).where(turns.c.conversation_id == conversations.c.id).scalar_subquery()
        query = (
            select(
                conversations.c.id,
                conversations.c.created,
                conversations.c.updated,
                count.label("turns"),
                first.label("title"),
            )
            .where(conversations.c.owner == owner)
            .order_by(conversations.c.updated.desc())
        )
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def conversation(self, conversation_id: str, owner: str) -> dict | None:
        """One conversation with its turns in order (answers decoded), or None."""
        with self.engine.connect() as conn:
            head = (
                conn.execute(
                    select(conversations.c.id, conversations.c.created, conversations.c.updated).where(
                        conversations.c.id == conversation_id, conversations.c.owner == owner
                    )
                )
                .mappings()
                .first()
            )
            if head is None:
                return None
            rows = conn.execute(
                select(
                    turns.c.position, turns.c.question, turns.c.standalone, turns.c.answer, turns.c.created
                )
                .where(turns.c.conversation_id == conversation_id)
                .order_by(turns.c.position)
            ).mappings()
            listed = [{**row, "answer": json.loads(row["answer"])} for row in rows]
        return {**head, "turns": listed}
