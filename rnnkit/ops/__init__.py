"""Pure functions on arrays: the equations of the seed, forward and backward."""

from rnnkit.ops.activations import log_mean_softmax, log_softmax, relu, sigmoid, softmax, tanh
from rnnkit.ops.gru import gru_backward, gru_forward
from rnnkit.ops.losses import cross_entropy_sum, mse, softmax_cross_entropy
from rnnkit.ops.lstm import lstm_backward, lstm_forward
from rnnkit.ops.rnn import rnn_backward, rnn_forward

__all__ = [
    "cross_entropy_sum",
    "gru_backward",
    "gru_forward",
    "log_mean_softmax",
    "log_softmax",
    "lstm_backward",
    "lstm_forward",
    "mse",
    "relu",
    "rnn_backward",
    "rnn_forward",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
    "tanh",
]
