"""Ready models built from ``rnnkit.nn``."""

from rnnkit.models.decoding import Seq2SeqEnsemble
from rnnkit.models.forecaster import Forecaster
from rnnkit.models.language_model import LanguageModel
from rnnkit.models.regressor import SequenceRegressor
from rnnkit.models.seq2seq import Seq2Seq
from rnnkit.models.tagger import SequenceTagger

__all__ = [
    "Forecaster",
    "LanguageModel",
    "Seq2Seq",
    "Seq2SeqEnsemble",
    "SequenceRegressor",
    "SequenceTagger",
]
