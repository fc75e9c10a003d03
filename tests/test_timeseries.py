"""Time-series data and forecasting pieces: CSV reader, split, scaling, windows, baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnkit.data.timeseries import (
    SeriesScaler,
    future_dates,
    make_windows,
    read_series,
    split_points,
    window_origins,
)
from rnnkit.diagnostics.gradcheck import gradcheck_module
from rnnkit.models.forecaster import (
    Forecaster,
    mae,
    mase,
    mase_scale,
    naive_forecast,
    residual_intervals,
    rmse,
    seasonal_naive_forecast,
)

DATA = Path(__file__).parent / "data"
MONTHLY = DATA / "ts_monthly.csv"


def test_read_series_reads_dates_and_values():
    s = read_series(MONTHLY, "Value")
    assert s.values.shape == (72,)
    assert s.values.dtype == np.float64
    assert s.dates[:2] == ["2000-01", "2000-02"]
    assert s.date_column == "Month"
    assert s.values[1] == pytest.approx(22.94)


def test_read_series_single_column_and_bom(tmp_path):
    f = tmp_path / "one.csv"
    f.write_bytes("\ufeffy\n1\n2\n\n3\n".encode())
    s = read_series(f, "y")
    assert s.values.tolist() == [1.0, 2.0, 3.0]
    assert s.date_column is None
    assert s.dates == ["1", "2", "4"]  # row numbers when there is no date column


def test_missing_column_names_the_columns():
    with pytest.raises(ValueError, match=r"no column 'Passengers'; its columns are \['Month', "):
        read_series(MONTHLY, "Passengers")
    with pytest.raises(ValueError, match="no date column 'Day'"):
        read_series(MONTHLY, "Value", date_column="Day")


def test_bad_values_are_reported_with_their_rows():
    with pytest.raises(ValueError, match="4 bad row") as err:
        read_series(DATA / "ts_bad_values.csv", "Value")
    msg = str(err.value)
    assert "4 bad row(s)" in msg
    assert "row 3: missing value" in msg
    assert "row 4: non-numeric value 'abc'" in msg
    assert "row 6: missing value" in msg  # NaN counts as missing
    assert "row 7: 2 fields, expected 3" in msg


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", "is empty"),
        ("a,b\n", "no data rows"),
        ("d,v\n1,inf\n", "row 2: non-finite value 'inf'"),
    ],
)
def test_other_bad_files(tmp_path, content, match):
    f = tmp_path / "f.csv"
    f.write_text(content)
    with pytest.raises(ValueError, match=match):
        read_series(f, "v" if "v" in content else "b")


def test_missing_file():
    with pytest.raises(ValueError, match="does not exist"):
        read_series(DATA / "nope.csv", "v")


def test_split_is_time_ordered_and_every_part_owns_its_targets():
    n, W, H = 40, 6, 3
    points = split_points(n, W, H, valid_size=8, test_size=10)
    assert points == (22, 30, 40)
    tr, va, te = (window_origins(points, p, W, H) for p in ("train", "valid", "test"))
    assert tr[0] == W
    assert tr[-1] + H <= points.a
    assert va[0] == points.a
    assert va[-1] + H <= points.b
    assert te[0] == points.b
    assert te[-1] + H == n
    assert len(te) == 10 - H + 1


def test_too_short_for_the_window_is_a_clear_error():
    with pytest.raises(ValueError, match=r"too short for the window: 20 values.*at least 27"):
        split_points(20, 12, 3, valid_size=6, test_size=6)
    with pytest.raises(ValueError, match="at least the horizon"):
        split_points(100, 12, 3, valid_size=2, test_size=6)
    with pytest.raises(ValueError, match="too short for the window"):
        make_windows(np.zeros(5), np.array([3]), window=4, horizon=1)


def test_scaler_is_fitted_on_the_given_part_and_inverts():
    train = np.array([1.0, 2.0, 3.0, 4.0])
    sc = SeriesScaler.fit(train)
    assert sc.mean == pytest.approx(2.5)
    z = sc.transform(np.array([2.5, 10.0]))
    assert z[0] == pytest.approx(0.0)
    np.testing.assert_allclose(sc.inverse(z), [2.5, 10.0])
    lg = SeriesScaler.fit(train, log=True)
    np.testing.assert_allclose(lg.inverse(lg.transform(train)), train)
    assert SeriesScaler.from_json(lg.to_json()) == lg
    assert SeriesScaler.fit(np.ones(3)).std == 1.0
    with pytest.raises(ValueError, match="positive values"):
        SeriesScaler.fit(np.array([1.0, 0.0]), log=True)


def test_windows_with_level_normalisation():
    z = np.arange(10.0) ** 2
    w = make_windows(z, np.array([3, 7]), window=3, horizon=2, level=True, dtype=np.float64)
    assert w.x.shape == (3, 2, 1)
    np.testing.assert_array_equal(w.level, [4.0, 36.0])
    np.testing.assert_array_equal(w.x[:, 0, 0], [0 - 4, 1 - 4, 0.0])
    np.testing.assert_array_equal(w.y[1], [49 - 36, 64 - 36])
    beyond = make_windows(z, np.array([10]), window=3, horizon=2)
    np.testing.assert_array_equal(beyond.y, [[0.0, 0.0]])  # past the end: no targets


def test_baselines_and_metrics():
    y = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 11.0, 21.0])
    origins = np.array([6])
    np.testing.assert_array_equal(naive_forecast(y, origins, 2), [[30.0, 30.0]])
    np.testing.assert_array_equal(seasonal_naive_forecast(y, origins, 4, season=3),
                                  [[10.0, 20.0, 30.0, 10.0]])  # fmt: skip
    assert mase_scale(y[:6], 3) == pytest.approx((9 + 18 + 27) / 3)
    actual, fc = np.array([[1.0, 3.0]]), np.array([[2.0, 1.0]])
    assert mae(actual, fc) == pytest.approx(1.5)
    assert rmse(actual, fc) == pytest.approx(np.sqrt(2.5))
    assert mase(actual, fc, y[:6], 3) == pytest.approx(1.5 / 18)
    # MASE of the in-sample one-step seasonal-naive forecast is exactly 1 by definition.
    t = np.arange(3, 6)
    assert mase(y[t], y[t - 3], y[:6], 3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="needs S=4 past values"):
        seasonal_naive_forecast(y, np.array([3]), 2, season=4)
    with pytest.raises(ValueError, match="scale is 0"):
        mase_scale(np.ones(5), 1)


def test_residual_intervals_cover_the_requested_share():
    r = np.random.default_rng(0).normal(size=(2000, 3)) * np.array([1.0, 2.0, 3.0])
    lo, hi = residual_intervals(r, 0.8)
    inside = (r >= lo) & (r <= hi)
    np.testing.assert_allclose(inside.mean(axis=0), 0.8, atol=0.01)
    assert np.all(hi - lo > 0)
    with pytest.raises(ValueError, match="coverage"):
        residual_intervals(r, 1.0)


def test_forecaster_gradients_and_rebuild():
    f = Forecaster(horizon=3, hidden_size=4, cell="lstm", rng=0)
    g = Forecaster(**f.config)
    g.load_state_dict(f.state_dict())
    x = np.random.default_rng(1).normal(size=(6, 2, 1)).astype(np.float32)
    np.testing.assert_array_equal(f.predict(x), g.predict(x))
    report = gradcheck_module(f.astype(np.float64), (x.astype(np.float64),))
    assert report.ok(), report


def test_future_dates():
    assert future_dates(["1981-01-01", "1981-01-02"], 2) == ["1981-01-03", "1981-01-04"]
    assert future_dates(["2000-11", "2000-12"], 1) == ["2001-01"]
    assert future_dates(["5"], 2) == ["+1", "+2"]
    assert future_dates(["2000-02", "2000-01"], 1) == ["+1"]
