"""Fused float32 sequence kernels: the fast path of the RNN, LSTM and GRU ops.

Same functions, arguments, results and caches as :mod:`rnnkit.ops` (a cache from either
path backpropagates through either). float32 runs the Numba kernels, float64 the
reference ops; :func:`backend` says which path runs and why, :func:`use_reference`
forces the reference (see :mod:`rnnkit.kernels.selection` for the rules and the
environment variables ``RNNKIT_KERNELS``, ``RNNKIT_NUM_THREADS``, ``RNNKIT_STEP_GEMM``).
Numba is imported and the kernels compiled (then cached on disk) on the first float32 call.
"""

from __future__ import annotations

from rnnkit.kernels.gru import gru_backward, gru_forward
from rnnkit.kernels.losses import cross_entropy_sum, softmax_cross_entropy
from rnnkit.kernels.lstm import lstm_backward, lstm_forward
from rnnkit.kernels.rnn import rnn_backward, rnn_forward
from rnnkit.kernels.selection import Backend, backend, use_backend, use_reference

__all__ = [
    "Backend",
    "backend",
    "cross_entropy_sum",
    "gru_backward",
    "gru_forward",
    "lstm_backward",
    "lstm_forward",
    "rnn_backward",
    "rnn_forward",
    "softmax_cross_entropy",
    "use_backend",
    "use_reference",
]
