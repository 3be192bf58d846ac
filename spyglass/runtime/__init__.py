"""What the engine holds at run time: the models (shared per spec) and a collection's open state."""

from spyglass.runtime.collection import CollectionState
from spyglass.runtime.lazy import Lazy
from spyglass.runtime.models import Models

__all__ = ["CollectionState", "Lazy", "Models"]
