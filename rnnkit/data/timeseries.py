"""Time series for forecasting: a CSV reader, a time-ordered split, scaling and sliding windows.

A series y_0 … y_{n−1} is split by time, never shuffled across the split, into a
training, a validation and a test part; a window's *origin* i is the index of its
first target:

(TS-1) window i:  inputs y_{i−W} … y_{i−1},  targets y_i … y_{i+H−1}
(TS-2) the parts own the targets: train i+H ≤ a;  valid a ≤ i, i+H ≤ b;  test b ≤ i, i+H ≤ n
       with a = n − n_valid − n_test and b = n − n_test (inputs may reach back before a part)
(TS-3) scaling fitted on the training part y_0 … y_{a−1} only:
       z_t = (u_t − μ) / σ,  u_t = log y_t (with ``log``) or y_t
(TS-4) level normalisation (optional): each window's inputs and targets are taken
       relative to its last input, z̃ = z − z_{i−1}; the forecast adds z_{i−1} back

Every error names the file, the row (1-based line number in the file, the header
being line 1) and the column, and says what to do.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "Series",
    "SeriesScaler",
    "SplitPoints",
    "Windows",
    "future_dates",
    "make_windows",
    "read_series",
    "split_points",
    "window_origins",
]

_MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}


class Series(NamedTuple):
    """A univariate series read from a CSV file."""

    dates: list[str]  # the date column as written (row numbers when there is none)
    values: np.ndarray  # (n,) float64
    column: str  # the value column's name
    date_column: str | None


def read_series(
    path: str | os.PathLike[str], column: str, date_column: str | None = None
) -> Series:
    r"""Read the column ``column`` of a CSV file with a header row, with its dates.

    Parameters
    ----------
    path : the CSV file (UTF-8, with or without a byte-order mark)
    column : name of the value column
    date_column : name of the date column; default the first column that is not
        ``column`` (None when the file has a single column: dates are then row numbers)

    Returns
    -------
    Series

    Raises
    ------
    ValueError
        If the file is empty, a column is missing, a row has the wrong number of
        fields, or values are missing or not finite numbers; the message lists the
        offending rows (up to five) and how many there are.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "s.csv"
    >>> _ = f.write_text('"Month","Passengers"\n"1949-01",112\n"1949-02",118\n')
    >>> s = read_series(f, "Passengers")
    >>> s.dates, s.values.tolist(), s.date_column
    (['1949-01', '1949-02'], [112.0, 118.0], 'Month')
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"CSV file {str(p)!r} does not exist or is not a file. Check the path.")
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError as exc:
        raise ValueError(f"CSV file {str(p)!r} is not UTF-8 text ({exc}).") from None
    except csv.Error as exc:
        raise ValueError(f"CSV file {str(p)!r} is malformed: {exc}.") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError(f"CSV file {str(p)!r} is empty; expected a header row, then data rows.")
    header = [h.strip() for h in rows[0]]
    if column not in header:
        raise ValueError(
            f"CSV file {str(p)!r} has no column {column!r}; its columns are {header}. "
            "Pass one of them (e.g. --column NAME)."
        )
    if date_column is None:
        others = [h for h in header if h != column]
        date_column = others[0] if others else None
    elif date_column not in header:
        raise ValueError(
            f"CSV file {str(p)!r} has no date column {date_column!r}; its columns are {header}."
        )
    vi = header.index(column)
    di = None if date_column is None else header.index(date_column)
    dates: list[str] = []
    values: list[float] = []
    bad: list[str] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue  # blank lines
        if len(row) != len(header):
            bad.append(f"row {line}: {len(row)} fields, expected {len(header)}")
            continue
        text = row[vi].strip()
        if text.lower() in _MISSING:
            bad.append(f"row {line}: missing value")
            continue
        try:
            v = float(text)
        except ValueError:
            bad.append(f"row {line}: non-numeric value {text!r}")
            continue
        if not math.isfinite(v):
            bad.append(f"row {line}: non-finite value {text!r}")
            continue
        values.append(v)
        dates.append(str(line - 1) if di is None else row[di].strip())
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise ValueError(
            f"CSV file {str(p)!r}, column {column!r}: {len(bad)} bad row(s): "
            + "; ".join(bad[:5])
            + more
            + ". Fix or fill these rows (forecasting needs a complete, evenly spaced series)."
        )
    if not values:
        raise ValueError(f"CSV file {str(p)!r} has a header but no data rows.")
    return Series(dates, np.array(values, dtype=np.float64), column, date_column)


class SplitPoints(NamedTuple):
    """Boundaries of (TS-2): train targets [0, a), valid [a, b), test [b, n)."""

    a: int
    b: int
    n: int


def split_points(n: int, window: int, horizon: int, valid_size: int, test_size: int) -> SplitPoints:
    """Check that every part holds at least one window (TS-1)–(TS-2); return its boundaries.

    ``valid_size`` and ``test_size`` are numbers of time steps (targets), each >= ``horizon``;
    ``valid_size`` may be 0 (no validation part).
    """
    for name, v, low in (("window", window, 1), ("horizon", horizon, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"`{name}` must be an integer >= {low}; got {v!r}.")
    for name, v in (("valid_size", valid_size), ("test_size", test_size)):
        if v != 0 and v < horizon:
            raise ValueError(
                f"`{name}` must be 0 or at least the horizon H={horizon} steps; got {v}."
            )
    a, b = n - valid_size - test_size, n - test_size
    need = window + horizon + valid_size + test_size
    if a < window + horizon:
        raise ValueError(
            f"the series is too short for the window: {n} values, but a window of W={window} "
            f"inputs and H={horizon} targets plus {valid_size} validation and {test_size} test "
            f"steps need at least {need}. Use a shorter --window or smaller parts, or a longer "
            "series."
        )
    return SplitPoints(a, b, n)


def window_origins(points: SplitPoints, part: str, window: int, horizon: int) -> np.ndarray:
    """Origins i of the windows whose targets lie in ``part`` ("train", "valid", "test"), (TS-2)."""
    a, b, n = points
    lo, hi = {"train": (0, a), "valid": (a, b), "test": (b, n)}[part]
    first = max(lo, window)
    return np.arange(first, hi - horizon + 1, dtype=np.int64)


class SeriesScaler(NamedTuple):
    """(TS-3): optional log, then standardisation with μ, σ of the training part."""

    log: bool
    mean: float
    std: float

    @classmethod
    def fit(cls, train_values: np.ndarray, log: bool = False) -> SeriesScaler:
        """μ and σ of the (log) training values; σ = 1 for a constant part."""
        v = np.asarray(train_values, dtype=np.float64)
        if v.size == 0:
            raise ValueError("`train_values` is empty; the scaler needs the training part.")
        if log and np.any(v <= 0):
            raise ValueError(
                "`log` scaling needs positive values; the training part has values <= 0. "
                "Turn log scaling off."
            )
        u = np.log(v) if log else v
        std = float(u.std())
        return cls(bool(log), float(u.mean()), std if std > 0 else 1.0)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Scale values y to z, (TS-3)."""
        v = np.asarray(values, dtype=np.float64)
        if self.log and np.any(v <= 0):
            raise ValueError("`log` scaling needs positive values; got values <= 0.")
        u = np.log(v) if self.log else v
        return (u - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Map z back to y, the inverse of :meth:`transform`."""
        u = np.asarray(z, dtype=np.float64) * self.std + self.mean
        return np.exp(u) if self.log else u

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields (for checkpoints)."""
        return {"log": self.log, "mean": self.mean, "std": self.std}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SeriesScaler:
        """Inverse of :meth:`to_json`."""
        return cls(bool(data["log"]), float(data["mean"]), float(data["std"]))


class Windows(NamedTuple):
    """Sliding windows (TS-1), time-major inputs for the recurrent layer."""

    x: np.ndarray  # (W, N, 1) inputs
    y: np.ndarray  # (N, H) targets (zeros past the end of the series)
    level: np.ndarray  # (N,) what was subtracted by (TS-4); zeros without it
    origins: np.ndarray  # (N,) int64


def make_windows(
    z: np.ndarray,
    origins: np.ndarray,
    window: int,
    horizon: int,
    level: bool = False,
    dtype: type | np.dtype = np.float32,
) -> Windows:
    """Cut windows (TS-1) of the scaled series ``z`` at ``origins``, with (TS-4) if ``level``.

    Targets past the end of ``z`` (a forecast beyond the data) are zeros.

    Examples
    --------
    >>> w = make_windows(np.arange(6.0), np.array([2, 4]), window=2, horizon=2)
    >>> w.x[:, :, 0].T.tolist(), w.y.tolist()
    ([[0.0, 1.0], [2.0, 3.0]], [[2.0, 3.0], [4.0, 5.0]])
    """
    z = np.asarray(z, dtype=np.float64)
    origins = np.asarray(origins, dtype=np.int64)
    if origins.size and (origins.min() < window or origins.max() > z.size):
        raise ValueError(
            f"window origins must lie in [W={window}, n={z.size}] so that W inputs exist; "
            f"got [{origins.min()}, {origins.max()}]. The series is too short for the window."
        )
    steps = np.arange(-window, 0)[:, None] + origins[None, :]  # (W, N)
    x = z[steps]
    padded = np.concatenate([z, np.zeros(horizon)])
    y = padded[origins[:, None] + np.arange(horizon)[None, :]]  # (N, H)
    lev = x[-1].copy() if level else np.zeros(origins.size)
    if level:
        x = x - lev[None, :]
        y = y - lev[:, None]
    return Windows(x[:, :, None].astype(dtype), y.astype(dtype), lev, origins)


def future_dates(dates: list[str], count: int) -> list[str]:
    """The ``count`` dates after ``dates``, continuing its last step; ``+k`` if not dates.

    ISO dates of any unit NumPy reads (``1949-01``, ``1981-01-01``) are continued by the
    step between the last two; anything else gives ``+1``, ``+2``, ...

    Examples
    --------
    >>> future_dates(["1960-11", "1960-12"], 2), future_dates(["a", "b"], 2)
    (['1961-01', '1961-02'], ['+1', '+2'])
    """
    fallback = [f"+{k}" for k in range(1, count + 1)]
    if len(dates) < 2:
        return fallback
    try:
        last = np.array(dates[-2:], dtype="datetime64")
    except ValueError:
        return fallback
    step = last[1] - last[0]
    if step <= np.timedelta64(0):
        return fallback
    return [str(last[1] + step * k) for k in range(1, count + 1)]
