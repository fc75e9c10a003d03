"""Modules that own parameters: layers, recurrent networks, cells."""

from rnnkit.nn.attention import AdditiveAttention, DotAttention, GeneralAttention
from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.decoder import AttentionDecoder
from rnnkit.nn.layers import Dropout, Embedding, Linear
from rnnkit.nn.module import Module, Parameter
from rnnkit.nn.recurrent import GRU, LSTM, RNN

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "AdditiveAttention",
    "AttentionDecoder",
    "DotAttention",
    "Dropout",
    "Embedding",
    "GRUCell",
    "GeneralAttention",
    "LSTMCell",
    "Linear",
    "Module",
    "Parameter",
    "RNNCell",
]
