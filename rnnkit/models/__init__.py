"""Ready models built from ``rnnkit.nn``."""

from rnnkit.models.language_model import LanguageModel

__all__ = ["LanguageModel"]
