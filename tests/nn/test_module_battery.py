"""A common battery for every public module: registration, state round trip, protocol errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.models import LanguageModel
from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.layers import Embedding, Linear
from rnnkit.nn.recurrent import GRU, LSTM, RNN

rng = np.random.default_rng(0)
X3 = rng.normal(size=(4, 2, 3))
CASES = {
    "Linear": (lambda s: Linear(3, 5, rng=s), lambda: (X3.astype(np.float32),)),
    "Embedding": (lambda s: Embedding(7, 3, rng=s), lambda: (np.array([[1, 2], [6, 0]]),)),
    "RNN": (lambda s: RNN(3, 4, 2, bidirectional=True, rng=s), lambda: (X3.astype(np.float32),)),
    "LSTM": (lambda s: LSTM(3, 4, 2, rng=s), lambda: (X3.astype(np.float32),)),
    "GRU": (lambda s: GRU(3, 4, reset_after=False, rng=s), lambda: (X3.astype(np.float32),)),
    "RNNCell": (lambda s: RNNCell(3, 4, rng=s), lambda: (X3[0].astype(np.float32),)),
    "LSTMCell": (lambda s: LSTMCell(3, 4, rng=s), lambda: (X3[0].astype(np.float32),)),
    "GRUCell": (lambda s: GRUCell(3, 4, rng=s), lambda: (X3[0].astype(np.float32),)),
    "LanguageModel": (
        lambda s: LanguageModel(7, 3, 4, 2, rng=s),
        lambda: (np.array([[1, 2], [6, 0]]),),
    ),
}


def first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name", list(CASES))
def test_battery(name):
    make, inputs = CASES[name]
    a, b = make(1), make(2)
    params = dict(a.named_parameters())
    assert params, "parameters are registered"
    for pname, p in params.items():
        assert p.grad.shape == p.data.shape, pname
        assert p.grad.dtype == p.data.dtype, pname
    ya = first(a(*inputs()))
    yb = first(b(*inputs()))
    assert not np.allclose(ya, yb)  # different seeds, different weights
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(first(b(*inputs())), ya)  # state round trip
    # strict loading: a missing key is refused and changes nothing
    sd = a.state_dict()
    sd.pop(next(iter(sd)))
    before = {k: v.copy() for k, v in b.state_dict().items()}
    with pytest.raises(KeyError, match="missing keys"):
        b.load_state_dict(sd)
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    # the protocol: one backward per forward, then a loud error naming the module
    a.clear_cache()
    a.eval()
    a(*inputs())
    assert a.pending() == 0
    dout = (np.ones_like(ya), None) if isinstance(a, LSTMCell) else np.ones_like(ya)
    with pytest.raises(RuntimeError, match=type(a).__name__):
        a.backward(dout)
    assert type(a).__name__ in repr(a)
