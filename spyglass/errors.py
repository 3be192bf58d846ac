"""Exceptions users see. Each message is meant to be read by a person, in one sentence."""


class SpyglassError(Exception):
    """Base class: the CLI and API print these without a traceback."""


class ModelSpecError(SpyglassError, ValueError):
    """A model spec string that names no loadable model."""


class WeightsUnavailableError(SpyglassError):
    """Weights are not on this machine and cannot be downloaded now."""


class ImageLoadError(SpyglassError):
    """An image that cannot be decoded, is too large, or is not an image at all."""


class ModelMismatchError(SpyglassError):
    """Vectors or queries from a model other than the one the store was opened for."""


class ReindexRequiredError(SpyglassError):
    """The catalog holds vectors of another model only; searching them with this one would be meaningless."""


class WritesRefused(SpyglassError):
    """The collection refuses writes from now on: it is being deleted, and a job writing to it stops."""
