"""``Forecaster`` (a recurrent encoder with a direct multi-horizon head), baselines and metrics.

Equations (window of W inputs ending at i − 1, horizon H; :mod:`rnnkit.data.timeseries`):

(FC-1) h_{i−1} = Encoder(z_{i−W} … z_{i−1})       RNN, LSTM or GRU, last state of the top layer
(FC-2) ẑ_{i+k} = [W_o h_{i−1} + b_o]_k,  k = 0 … H−1   all H steps at once (direct, not recursive)
(FC-3) L = MSE(ẑ, z), (MSE-1), over the batch and the H steps
(NAIVE) ŷ_{i+k} = y_{i−1}                              the last value
(SNAIVE) ŷ_{i+k} = y_{i+k−S(⌊k/S⌋+1)}                  the value one season S back
(MAE)  mean |y − ŷ|;  (RMSE) √(mean (y − ŷ)²)          over every window and step
(MASE) MAE / q,  q = (1/(a−S)) Σ_{t=S}^{a−1} |y_t − y_{t−S}|
       the in-sample MAE of the one-step seasonal-naive forecast on the training part
       y_0 … y_{a−1} (Hyndman & Koehler 2006); S = 1 gives the naive scaling.
(PI)   interval_k = ŷ_{i+k} + [Q_α/2, Q_{1−α/2}] of the validation residuals y − ŷ at step k
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.models.regressor import SequenceRegressor

__all__ = [
    "Forecaster",
    "mae",
    "mase",
    "mase_scale",
    "naive_forecast",
    "residual_intervals",
    "rmse",
    "seasonal_naive_forecast",
]


class Forecaster(SequenceRegressor):
    """Multi-horizon forecaster, equations (FC-1)–(FC-3).

    Parameters
    ----------
    horizon : int
        H, the steps forecast at once.
    hidden_size : int
    num_layers : int
    cell : {"lstm", "gru", "rnn"}
    input_size : int
        Features per step (1 for a univariate series).
    forget_bias, recurrent_init, rng, dtype : as :class:`SequenceRegressor`

    Shapes: a window ``x`` (W, B, input_size) -> ``ẑ`` (B, H).

    Examples
    --------
    >>> f = Forecaster(horizon=3, hidden_size=4, cell="gru", rng=0)
    >>> f.predict(np.zeros((12, 2, 1), dtype=np.float32)).shape
    (2, 3)
    """

    def __init__(
        self,
        horizon: int,
        hidden_size: int,
        num_layers: int = 1,
        cell: str = "lstm",
        input_size: int = 1,
        forget_bias: float | None = None,
        recurrent_init: str = "uniform",
        rng: np.random.Generator | int | None = None,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            horizon,
            num_layers,
            cell,
            forget_bias=forget_bias,
            recurrent_init=recurrent_init,
            rng=rng,
            dtype=dtype,
        )
        self.horizon = int(horizon)
        self.config: dict[str, Any] = {
            "horizon": horizon,
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            "cell": cell,
            "input_size": input_size,
            "forget_bias": forget_bias,
            "recurrent_init": recurrent_init,
            "dtype": np.dtype(dtype).name,
        }  # Forecaster(**config) rebuilds it


def _series(name: str, y: object) -> np.ndarray:
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D series; got shape {arr.shape}.")
    return arr


def naive_forecast(y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """(NAIVE): the last value before each origin, repeated H times; returns (N, H).

    Examples
    --------
    >>> naive_forecast(np.arange(5.0), np.array([2, 4]), 2).tolist()
    [[1.0, 1.0], [3.0, 3.0]]
    """
    y = _series("y", y)
    origins = np.asarray(origins, dtype=np.int64)
    if origins.size and origins.min() < 1:
        raise ValueError(f"origins must be >= 1 (one past value); got {origins.min()}.")
    return np.repeat(y[origins - 1][:, None], horizon, axis=1)


def seasonal_naive_forecast(
    y: np.ndarray, origins: np.ndarray, horizon: int, season: int
) -> np.ndarray:
    """(SNAIVE): the value one season back from each target, from the last observed season.

    Returns (N, H); each origin needs ``season`` past values.

    Examples
    --------
    >>> seasonal_naive_forecast(np.arange(8.0), np.array([4]), 3, season=2).tolist()
    [[2.0, 3.0, 2.0]]
    """
    y = _series("y", y)
    if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or season < 1:
        raise ValueError(f"`season` must be an integer >= 1; got {season!r}.")
    origins = np.asarray(origins, dtype=np.int64)
    if origins.size and origins.min() < season:
        raise ValueError(
            f"a seasonal-naive forecast needs S={season} past values before every origin; "
            f"the first origin is {origins.min()}. Start the evaluation later."
        )
    k = np.arange(horizon)
    back = season * (k // season + 1)  # S(⌊k/S⌋ + 1)
    return y[origins[:, None] + k[None, :] - back[None, :]]


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    """(MAE) over every entry."""
    return float(np.mean(np.abs(np.asarray(actual, float) - np.asarray(forecast, float))))


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    """(RMSE) over every entry."""
    d = np.asarray(actual, float) - np.asarray(forecast, float)
    return float(np.sqrt(np.mean(d**2)))


def mase_scale(train: np.ndarray, season: int) -> float:
    """The scale q of (MASE): in-sample MAE of the one-step seasonal-naive forecast of ``train``.

    Examples
    --------
    >>> mase_scale(np.array([1.0, 2.0, 4.0, 7.0]), season=1)
    2.0
    """
    train = _series("train", train)
    if season < 1 or train.size <= season:
        raise ValueError(
            f"the MASE scale needs more than S={season} training values; got {train.size}."
        )
    q = float(np.mean(np.abs(train[season:] - train[:-season])))
    if q == 0:
        raise ValueError(
            "the MASE scale is 0: the training part repeats itself exactly every season."
        )
    return q


def mase(actual: np.ndarray, forecast: np.ndarray, train: np.ndarray, season: int) -> float:
    """(MASE): MAE of ``forecast`` divided by :func:`mase_scale` of ``train``."""
    return mae(actual, forecast) / mase_scale(train, season)


def residual_intervals(residuals: np.ndarray, coverage: float = 0.8) -> np.ndarray:
    """(PI): per-step quantiles of ``residuals`` (N, H) = actual − forecast; returns (2, H).

    Row 0 is the lower offset, row 1 the upper; add them to a forecast. Empirical,
    so only as good as the assumption that future errors resemble the validation errors.
    """
    r = np.asarray(residuals, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 1:
        raise ValueError(f"`residuals` must be (N, H) with N >= 1; got shape {r.shape}.")
    if not 0 < coverage < 1:
        raise ValueError(f"`coverage` must be in (0, 1); got {coverage}.")
    alpha = 1.0 - coverage
    return np.quantile(r, [alpha / 2, 1 - alpha / 2], axis=0)
