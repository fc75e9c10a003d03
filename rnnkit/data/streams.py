"""Train/validation split and the parallel-stream batcher for truncated BPTT.

Layout (Zaremba et al.'s PTB reader, chainer's ``ParallelSequentialIterator``). A corpus of
N token ids is cut into B contiguous streams of L = ⌊N / B⌋ tokens (the last N − B·L
tokens are dropped) and laid out time-major:

(STREAM-1) D[t, b] = ids[b·L + t],   0 ≤ t < L,  0 ≤ b < B          D : (L, B)

An epoch is K = ⌈(L − 1) / k⌉ windows of k = ``bptt`` steps; window j starts at
s_j = j·k, has k_j = min(k, L − 1 − s_j) steps, and its targets are the inputs shifted by one:

(STREAM-2) x_j = D[s_j : s_j + k_j],   y_j = D[s_j + 1 : s_j + 1 + k_j]        (k_j, B)

So within an epoch every D[t, b] with t < L − 1 is an input exactly once and every
D[t, b] with t ≥ 1 a target exactly once; only the last window may be shorter
(``x.shape[0] < bptt``). Stream b of window j + 1 continues where stream b of window
j stopped, so the consumer carries its hidden state from one window to the next and
resets it to zero where ``Window.reset`` is True: the first window of each epoch, where
every stream jumps back to its start.

Resuming: :meth:`StreamBatcher.state_dict` records ``(epoch, position)``, the next window
to yield. Loading it into a batcher built from the same ids continues the epoch exactly
where it stopped. The hidden state carried across windows is the consumer's, so a
bit-for-bit resume in the middle of an epoch must also save and restore that state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

__all__ = ["StreamBatcher", "Window", "split_train_valid", "usable_streams"]


def _check_ids(ids: object) -> np.ndarray:
    """Return ``ids`` as a 1-D int64 array, or raise naming ``ids``."""
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"`ids` must hold integer token ids; got dtype {arr.dtype}. "
            "Encode the text with a vocabulary first."
        )
    if arr.ndim != 1:
        raise ValueError(f"`ids` must be 1-D (one token stream); got shape {arr.shape}.")
    return arr.astype(np.int64, copy=False)


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1; got {value!r}.")
    return int(value)


def split_train_valid(
    ids: np.ndarray, valid_fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Split a token stream into a leading train part and a trailing validation part.

    Like nanoGPT: ``n_train = int(N · (1 − valid_fraction))``, train is
    ``ids[:n_train]`` and valid is ``ids[n_train:]``. Deterministic and contiguous, so
    neither part is shuffled and no text crosses the boundary.

    Parameters
    ----------
    ids : (N,) integer array
    valid_fraction : float in (0, 1)

    Returns
    -------
    train, valid : int64 arrays, views of ``ids`` when it already is int64

    Raises
    ------
    ValueError
        If either part would have fewer than 2 tokens (no input/target pair).

    Examples
    --------
    >>> train, valid = split_train_valid(np.arange(10), 0.2)
    >>> train.tolist(), valid.tolist()
    ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    arr = _check_ids(ids)
    if (
        isinstance(valid_fraction, bool)
        or not isinstance(valid_fraction, (float, int))
        or not 0.0 < valid_fraction < 1.0
    ):
        raise ValueError(f"`valid_fraction` must be a float in (0, 1); got {valid_fraction!r}.")
    n = arr.shape[0]
    n_train = int(n * (1.0 - valid_fraction))
    if n_train < 2 or n - n_train < 2:
        raise ValueError(
            f"Splitting {n} tokens with valid_fraction={valid_fraction} gives {n_train} train "
            f"and {n - n_train} validation tokens; each part needs at least 2. "
            "Use a longer corpus or another valid_fraction."
        )
    return arr[:n_train], arr[n_train:]


class Window(NamedTuple):
    """One time-major window of the B parallel streams.

    Attributes
    ----------
    x : (k, B) int64, inputs, k = bptt except maybe for the epoch's last window
    y : (k, B) int64, targets: the next token of each input (STREAM-2)
    reset : bool, True on the epoch's first window: start every stream's state from zero
    epoch : int, the epoch this window belongs to (from 0)
    index : int, this window's position within the epoch, in [0, len(batcher))
        (the field shadows ``tuple.index``, which windows do not need)
    """

    x: np.ndarray
    y: np.ndarray
    reset: bool
    epoch: int
    index: int  # type: ignore[assignment]


def usable_streams(wanted: int, n_tokens: int) -> int:
    """At most ``wanted`` streams, and few enough that each holds two tokens (STREAM-1).

    >>> usable_streams(128, 1000), usable_streams(128, 101), usable_streams(4, 1)
    (128, 50, 1)
    """
    return min(wanted, max(1, n_tokens // 2))


class StreamBatcher:
    """Cut a token stream into B parallel streams and yield (x, y) windows for TBPTT.

    Iterating yields the *remaining* windows of the current epoch, from ``position``
    to the end; then ``epoch`` advances and ``position`` returns to 0, so
    ``for w in batcher`` once per epoch walks the epochs in order. ``position`` is
    advanced when a window is yielded, so a checkpoint taken after training on window
    j records ``position = j + 1`` (the next window). Iterate with one loop at a time.

    Parameters
    ----------
    ids : (N,) integer array, the token stream (copied)
    batch_size : int, B >= 1 parallel streams
    bptt : int, k >= 1 steps per window

    Attributes
    ----------
    data : (L, B) int64, read-only, the laid-out streams (STREAM-1)
    epoch : int, the epoch of the next window
    position : int, the index of the next window in ``[0, len(self)]``

    Examples
    --------
    >>> batcher = StreamBatcher(np.arange(10), batch_size=2, bptt=3)
    >>> batcher.data.T.tolist()
    [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    >>> [(w.x.T.tolist(), w.y.T.tolist(), w.reset) for w in batcher]
    [([[0, 1, 2], [5, 6, 7]], [[1, 2, 3], [6, 7, 8]], True), ([[3], [8]], [[4], [9]], False)]
    >>> batcher.epoch, batcher.position, len(batcher)
    (1, 0, 2)
    """

    def __init__(self, ids: np.ndarray, batch_size: int, bptt: int) -> None:
        arr = _check_ids(ids)
        b = _check_positive_int("batch_size", batch_size)
        self.bptt = _check_positive_int("bptt", bptt)
        self.batch_size = b
        n = arr.shape[0]
        length = n // b  # L
        if length < 2:
            raise ValueError(
                f"`ids` has {n} tokens, too few for batch_size={b} streams of at least 2 "
                f"tokens each (need >= {2 * b}). Use a smaller batch_size or more text."
            )
        self.n_tokens = n
        streams = arr[: b * length].reshape(b, length)  # (B, L)
        self.data = np.ascontiguousarray(streams.T)  # (L, B)                 (STREAM-1)
        self.data.flags.writeable = False
        self._fingerprint = hashlib.sha256(self.data.tobytes()).hexdigest()
        self.epoch = 0
        self.position = 0

    @property
    def stream_length(self) -> int:
        """L, the number of tokens in each stream."""
        return self.data.shape[0]

    def __len__(self) -> int:
        """K = ⌈(L − 1) / bptt⌉, the number of windows in one epoch."""
        return -(-(self.stream_length - 1) // self.bptt)

    def __repr__(self) -> str:
        return (
            f"StreamBatcher(n_tokens={self.n_tokens}, batch_size={self.batch_size}, "
            f"bptt={self.bptt}, windows={len(self)}, epoch={self.epoch}, "
            f"position={self.position})"
        )

    def window(self, index: int, epoch: int | None = None) -> Window:
        """Return window ``index`` of an epoch (default: the current one) without moving."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"`index` must be an int; got {type(index).__name__}.")
        if not 0 <= index < len(self):
            raise ValueError(
                f"`index` must be in [0, {len(self)}) (windows per epoch); got {index}."
            )
        s = int(index) * self.bptt
        k = min(self.bptt, self.stream_length - 1 - s)
        x = self.data[s : s + k]  # (k, B)                                      (STREAM-2)
        y = self.data[s + 1 : s + 1 + k]  # (k, B)
        return Window(x, y, bool(index == 0), self.epoch if epoch is None else epoch, int(index))

    def __iter__(self) -> Iterator[Window]:
        if self.position >= len(self):  # the previous loop stopped after the last window
            self.epoch, self.position = self.epoch + 1, 0
        while self.position < len(self):
            w = self.window(self.position)
            self.position += 1
            yield w
        self.epoch, self.position = self.epoch + 1, 0

    def state_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible dict recording the next window and the data layout."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "batch_size": self.batch_size,
            "bptt": self.bptt,
            "n_tokens": self.n_tokens,
            "data_sha256": self._fingerprint,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict` of a batcher built from the same ids and sizes.

        Raises
        ------
        ValueError
            If the state comes from other data, another batch_size or bptt, or is malformed.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"`state` must be a dict; got {type(state).__name__}.")
        want = set(self.state_dict())
        if set(state) != want:
            raise ValueError(
                f"`state` must have the keys {sorted(want)}; got {sorted(state)}. "
                "Pass the dict from StreamBatcher.state_dict()."
            )
        for key in ("batch_size", "bptt", "n_tokens", "data_sha256"):
            if state[key] != getattr(self, key if key != "data_sha256" else "_fingerprint"):
                raise ValueError(
                    f"`state` was saved for another stream layout: {key}={state[key]!r}, "
                    f"this batcher has {self.state_dict()[key]!r}. Rebuild the batcher with "
                    "the same token ids, batch_size and bptt as the run being resumed."
                )
        epoch, position = state["epoch"], state["position"]
        for key, value, hi in (("epoch", epoch, None), ("position", position, len(self))):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`state['{key}']` must be an int >= 0; got {value!r}.")
            if hi is not None and value > hi:
                raise ValueError(f"`state['{key}']` must be <= {hi}; got {value!r}.")
        self.epoch, self.position = epoch, position
