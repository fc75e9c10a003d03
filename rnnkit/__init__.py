"""rnnkit: recurrent neural networks from the equations up, with hand-written BPTT.

The public API, by layer (see DESIGN.md): ``rnnkit.ops`` (pure functions),
``rnnkit.nn`` (modules), ``rnnkit.optim``, ``rnnkit.models``, ``rnnkit.data``,
``rnnkit.train``, ``rnnkit.io``, ``rnnkit.diagnostics`` and the ``rnnkit`` command.
The most used names are re-exported here.
"""

from rnnkit.nn import (
    GRU,
    LSTM,
    RNN,
    Dropout,
    Embedding,
    GRUCell,
    Linear,
    LSTMCell,
    Module,
    Parameter,
    RNNCell,
)

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Dropout",
    "Embedding",
    "GRUCell",
    "LSTMCell",
    "Linear",
    "Module",
    "Parameter",
    "RNNCell",
    "__version__",
]
