"""``Lazy``: a value made when first asked for, once, that can be looked at without making it.

The engine's parts (models, stores, the retriever) are expensive to make and often never
needed: ``spyglass status`` must not load a model. A slot says whether it holds its value
(``loaded``: what ``/readyz`` asks) without anyone reading an object's ``__dict__``, and a model
switch replaces whole slots instead of forgetting attributes by name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
_EMPTY = object()


class Lazy(Generic[T]):
    """Holds what ``make`` returns, made on the first ``get`` (threads asking together wait for one)."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: object = _EMPTY
        self._lock = threading.RLock()  # reentrant: one slot's maker may read another slot

    @classmethod
    def of(cls, value: T) -> Lazy[T]:
        """A slot that already holds ``value`` (a model given by the caller)."""
        slot: Lazy[T] = cls(lambda: value)
        slot._value = value
        return slot

    @property
    def loaded(self) -> bool:
        return self._value is not _EMPTY

    def get(self) -> T:
        if self._value is _EMPTY:
            with self._lock:
                if self._value is _EMPTY:
                    self._value = self._make()
        return self._value  # type: ignore[return-value]

    def peek(self) -> T | None:
        """The value if it was made, else None; never makes it."""
        return None if self._value is _EMPTY else self._value  # type: ignore[return-value]
