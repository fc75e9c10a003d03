"""Data: vocabularies, corpora (tiny Shakespeare embedded) and streams for truncated BPTT."""

from rnnkit.data.corpora import (
    TINYSHAKESPEARE_CHARS,
    TINYSHAKESPEARE_SHA256,
    load_tinyshakespeare,
    read_text,
)
from rnnkit.data.streams import StreamBatcher, Window, split_train_valid
from rnnkit.data.vocab import CharVocab, WordVocab

__all__ = [
    "TINYSHAKESPEARE_CHARS",
    "TINYSHAKESPEARE_SHA256",
    "CharVocab",
    "StreamBatcher",
    "Window",
    "WordVocab",
    "load_tinyshakespeare",
    "read_text",
    "split_train_valid",
]
