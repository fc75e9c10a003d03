"""Data: vocabularies, corpora (tiny Shakespeare embedded) and streams for truncated BPTT."""

from rnnkit.data.adding import AddingBatch, adding_problem
from rnnkit.data.conllu import read_conllu, write_conllu
from rnnkit.data.corpora import (
    TINYSHAKESPEARE_CHARS,
    TINYSHAKESPEARE_SHA256,
    load_tinyshakespeare,
    read_text,
)
from rnnkit.data.ptb import load_ptb
from rnnkit.data.streams import StreamBatcher, Window, split_train_valid
from rnnkit.data.timeseries import read_series
from rnnkit.data.vocab import CharVocab, WordVocab

__all__ = [
    "TINYSHAKESPEARE_CHARS",
    "TINYSHAKESPEARE_SHA256",
    "AddingBatch",
    "CharVocab",
    "StreamBatcher",
    "Window",
    "WordVocab",
    "adding_problem",
    "load_ptb",
    "load_tinyshakespeare",
    "read_conllu",
    "read_series",
    "read_text",
    "split_train_valid",
    "write_conllu",
]
