"""rnnkit.optim against torch.optim: optimizers, state dicts, schedules, clipping, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rnnkit.nn.module import Module, Parameter
from rnnkit.optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    ReduceLROnPlateau,
    RMSprop,
    StepLR,
    clip_grad_norm,
    clip_grad_value,
)

SHAPES = [(3, 4), (5,), (2, 1, 3)]

# (rnnkit class, torch class, keyword arguments shared by both)
OPTIMIZER_CASES = [
    (SGD, torch.optim.SGD, {"lr": 0.1}),
    (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05}),
    (Adagrad, torch.optim.Adagrad, {"lr": 0.1}),
    (
        Adagrad,
        torch.optim.Adagrad,
        {
            "lr": 0.1,
            "lr_decay": 0.05,
            "weight_decay": 0.02,
            "initial_accumulator_value": 0.3,
            "eps": 1e-6,
        },
    ),
    (RMSprop, torch.optim.RMSprop, {"lr": 0.01}),
    (RMSprop, torch.optim.RMSprop, {"lr": 0.01, "momentum": 0.7}),
    (RMSprop, torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.3, "centered": True}),
    (
        RMSprop,
        torch.optim.RMSprop,
        {
            "lr": 0.01,
            "alpha": 0.9,
            "eps": 1e-6,
            "weight_decay": 0.02,
            "momentum": 0.7,
            "centered": True,
        },
    ),
    (Adam, torch.optim.Adam, {"lr": 0.01}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "betas": (0.3, 0.5), "eps": 1e-3}),
    (
        Adam,
        torch.optim.Adam,
        {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05, "amsgrad": True},
    ),
    (AdamW, torch.optim.AdamW, {"lr": 0.01}),
    (AdamW, torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
]
CASE_IDS = [f"{c.__name__}-{k}" for k, (c, _, _) in enumerate(OPTIMIZER_CASES)]


def make_params(seed: int = 0, dtype: type = np.float64) -> list[Parameter]:
    rng = np.random.default_rng(seed)
    return [Parameter(rng.normal(size=s).astype(dtype) + 0.5) for s in SHAPES]


def make_grads(n_steps: int, seed: int = 1) -> list[list[np.ndarray]]:
    """Gradients whose scale jumps between steps, so AMSGrad's max actually switches."""
    rng = np.random.default_rng(seed)
    return [
        [rng.normal(size=s) * 2.0 ** rng.uniform(-3, 3) + 0.1 for s in SHAPES]
        for _ in range(n_steps)
    ]


def run_ours(opt, params, grads, lr_change_at=None):
    for t, gs in enumerate(grads):
        if t == lr_change_at:
            opt.lr = opt.lr * 0.5
        for p, g in zip(params, gs, strict=True):
            p.grad[...] = g
        opt.step()


def json_part(obj):
    """The state dict with arrays replaced by None: what goes into the JSON file."""
    if isinstance(obj, np.ndarray):
        return None
    if isinstance(obj, dict):
        return {k: json_part(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_part(v) for v in obj]
    return obj


# -- optimizers against torch -------------------------------------------------------------
@pytest.mark.parametrize(("cls", "tcls", "kwargs"), OPTIMIZER_CASES, ids=CASE_IDS)
def test_optimizer_matches_torch(cls, tcls, kwargs):
    grads = make_grads(10)
    params = make_params()
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = cls(params, **kwargs)
    topt = tcls(tparams, foreach=False, **kwargs)
    data_refs = [p.data for p in params]
    run_ours(opt, params, grads, lr_change_at=6)
    for t, gs in enumerate(grads):
        if t == 6:
            topt.param_groups[0]["lr"] *= 0.5
        for tp, g in zip(tparams, gs, strict=True):
            tp.grad = torch.tensor(g)
        topt.step()
    for p, tp, ref in zip(params, tparams, data_refs, strict=True):
        assert p.data is ref  # updated in place
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-14)
    # The gradients were read, not modified.
    for p, g in zip(params, grads[-1], strict=True):
        np.testing.assert_array_equal(p.grad, g)


@pytest.mark.parametrize(("cls", "tcls", "kwargs"), OPTIMIZER_CASES, ids=CASE_IDS)
def test_float32_stays_float32(cls, tcls, kwargs):
    params = make_params(dtype=np.float32)
    opt = cls(params, **kwargs)
    run_ours(opt, params, make_grads(3))
    assert all(p.data.dtype == np.float32 and np.isfinite(p.data).all() for p in params)
    assert all(a.dtype == np.float32 for s in opt.state for a in s.values())


def test_zero_grad_and_step_count():
    params = make_params()
    opt = Adam(params)
    run_ours(opt, params, make_grads(2))
    assert opt.step_count == 2
    grad_refs = [p.grad for p in params]
    opt.zero_grad()
    assert all(p.grad is r and not p.grad.any() for p, r in zip(params, grad_refs, strict=True))


# -- state dict ---------------------------------------------------------------------------
@pytest.mark.parametrize(("cls", "tcls", "kwargs"), OPTIMIZER_CASES, ids=CASE_IDS)
def test_state_dict_resume_is_bit_exact(cls, tcls, kwargs):
    grads = make_grads(10)
    full = make_params()
    run_ours(cls(full, **kwargs), full, grads)

    first = make_params()
    opt = cls(first, **kwargs)
    run_ours(opt, first, grads[:5])
    sd = opt.state_dict()
    assert (sd["type"], sd["step"], len(sd["state"])) == (cls.__name__, 5, len(first))
    json_text = json.dumps(json_part(sd), allow_nan=False)  # all but the arrays is JSON
    resumed = [Parameter(p.data.copy()) for p in first]
    run_ours(opt, first, grads[5:6])  # must not reach the saved arrays: they are copies

    fresh = cls(resumed)  # default hyper-parameters: load_state_dict restores them
    fresh.load_state_dict(json.loads(json_text) | {"state": sd["state"]})
    assert fresh.hyper == opt.hyper
    for s in sd["state"]:  # loading copied the arrays
        for a in s.values():
            a[...] = np.nan
    run_ours(fresh, resumed, grads[5:])
    for p, q in zip(resumed, full, strict=True):
        assert np.array_equal(p.data, q.data)


def test_load_state_dict_errors_leave_optimizer_unchanged():
    params = make_params()
    opt = Adam(params, lr=0.01, amsgrad=True)
    run_ours(opt, params, make_grads(2))
    before = opt.state_dict()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="'Adam'"):
        SGD(params).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"must hold 2 entries"):
        Adam(params[:2]).load_state_dict(sd)
    bad_shape = opt.state_dict()
    bad_shape["state"][1]["exp_avg"] = np.zeros(6)
    with pytest.raises(ValueError, match=r"exp_avg.*shape.*\(5,\).*got \(6,\)"):
        opt.load_state_dict(bad_shape)
    missing = opt.state_dict()
    del missing["state"][0]["max_exp_avg_sq"]
    with pytest.raises(ValueError, match="max_exp_avg_sq"):
        opt.load_state_dict(missing)
    bad_hyper = opt.state_dict()
    bad_hyper["hyper"]["betas"] = [0.9, 1.5]
    with pytest.raises(ValueError, match=r"`betas\[1\]`"):
        opt.load_state_dict(bad_hyper)
    extra = opt.state_dict()
    extra["hyper"]["momentum"] = 0.9
    with pytest.raises(ValueError, match="unexpected \\['momentum'\\]"):
        opt.load_state_dict(extra)
    with pytest.raises(ValueError, match="missing the keys \\['step'\\]"):
        opt.load_state_dict({k: v for k, v in sd.items() if k != "step"})
    after = opt.state_dict()
    assert json_part(after) == json_part(before)
    for s, s0 in zip(after["state"], before["state"], strict=True):
        assert all(np.array_equal(s[k], s0[k]) for k in s0)


# -- schedules ----------------------------------------------------------------------------
SCHEDULE_CASES = [
    (StepLR, torch.optim.lr_scheduler.StepLR, {"step_size": 3, "gamma": 0.5}),
    (StepLR, torch.optim.lr_scheduler.StepLR, {"step_size": 1, "gamma": 0.9}),
    (ExponentialLR, torch.optim.lr_scheduler.ExponentialLR, {"gamma": 0.8}),
    (CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, {"T_max": 7}),
    (
        CosineAnnealingLR,
        torch.optim.lr_scheduler.CosineAnnealingLR,
        {"T_max": 5, "eta_min": 0.01},
    ),
    (
        LambdaLR,
        torch.optim.lr_scheduler.LambdaLR,
        {"lr_lambda": lambda e: 0.5 ** max(0, e - 4)},
    ),
]


def ours_lrs(sched, n):
    out = [sched.get_last_lr()]
    for _ in range(n):
        sched.optimizer.step()
        sched.step()
        out.append(sched.get_last_lr())
    return out


def torch_lrs(tsched, n, metrics=None):
    out = [tsched.get_last_lr()[0]]
    for k in range(n):
        tsched.optimizer.step()
        tsched.step() if metrics is None else tsched.step(metrics[k])
        out.append(tsched.get_last_lr()[0])
    return out


def torch_sgd(lr=0.3):
    return torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=lr)


@pytest.mark.parametrize(("cls", "tcls", "kwargs"), SCHEDULE_CASES)
def test_schedule_matches_torch(cls, tcls, kwargs):
    opt = SGD(make_params(), lr=0.3)
    sched = cls(opt, **kwargs)
    got = ours_lrs(sched, 20)
    want = torch_lrs(tcls(torch_sgd(), **kwargs), 20)
    assert got[0] == 0.3
    assert opt.lr == got[-1]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


PLATEAU_METRICS = [1.0, 0.9, 0.9, 0.91, 0.95, 0.8, 0.8, 0.79995, 0.8, 0.85]
PLATEAU_METRICS += [0.7, math.nan, 0.7, 0.7, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"patience": 1},
        {"patience": 2, "cooldown": 1, "factor": 0.5, "min_lr": 0.05},
        {"patience": 1, "cooldown": 3, "factor": 0.5},
        {"mode": "max", "patience": 0, "threshold": 0.05, "threshold_mode": "abs"},
        {"patience": 0, "factor": 0.5, "threshold": 0.1, "min_lr": 0.0749, "eps": 0.01},
    ],
)
def test_reduce_on_plateau_matches_torch(kwargs):
    opt = SGD(make_params(), lr=0.3)
    sched = ReduceLROnPlateau(opt, **kwargs)
    got = [sched.get_last_lr()]
    for m in PLATEAU_METRICS:
        opt.step()
        sched.step(m)
        got.append(sched.get_last_lr())
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_sgd(), **kwargs)
    want = torch_lrs(tsched, len(PLATEAU_METRICS), PLATEAU_METRICS)
    assert got == want
    assert len(set(got)) > 1  # the sequence really reduces


@pytest.mark.parametrize(
    ("make", "metrics"),
    [
        (lambda o: StepLR(o, step_size=3, gamma=0.5), None),
        (lambda o: CosineAnnealingLR(o, T_max=6, eta_min=0.01), None),
        (lambda o: LambdaLR(o, lambda e: 1.0 / (1 + e)), None),
        (lambda o: ReduceLROnPlateau(o, patience=1, cooldown=1), PLATEAU_METRICS),
    ],
)
def test_schedule_state_dict_resume(make, metrics):
    def advance(sched, ks):
        for k in ks:
            sched.optimizer.step()
            sched.step() if metrics is None else sched.step(metrics[k])
            lrs.append(sched.get_last_lr())

    lrs: list[float] = []
    advance(make(SGD(make_params(), lr=0.3)), range(15))
    full = lrs
    lrs = []
    first = make(SGD(make_params(), lr=0.3))
    json.dumps(first.state_dict(), allow_nan=False)  # also before any step (best = inf)
    advance(first, range(7))
    sd = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    resumed_opt = SGD(make_params(), lr=5.0)  # lr restored by the schedule's state
    resumed = make(resumed_opt)
    resumed.load_state_dict(sd)
    assert resumed_opt.lr == first.get_last_lr()
    advance(resumed, range(7, 15))
    assert lrs == full


def test_schedule_load_errors():
    sched = StepLR(SGD(make_params(), lr=0.3), step_size=2)
    sd = sched.state_dict()
    with pytest.raises(ValueError, match="'StepLR'"):
        ExponentialLR(SGD(make_params()), gamma=0.5).load_state_dict(sd)
    with pytest.raises(ValueError, match="`step_size`"):
        sched.load_state_dict(sd | {"step_size": 0})
    with pytest.raises(ValueError, match="missing \\['gamma'\\]"):
        sched.load_state_dict({k: v for k, v in sd.items() if k != "gamma"})


# -- clipping -----------------------------------------------------------------------------
def params_with_grads(seed=3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = make_params(seed, dtype)
    for p in params:
        p.grad[...] = rng.normal(size=p.shape) * 3
    return params


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    params = params_with_grads()
    tparams = [torch.tensor(p.data) for p in params]
    for tp, p in zip(tparams, params, strict=True):
        tp.grad = torch.tensor(p.grad.copy())
    before = [p.grad.copy() for p in params]
    total = clip_grad_norm(params, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type, foreach=False)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, ttotal.item(), rtol=1e-12)
    for p, tp in zip(params, tparams, strict=True):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12)
    if max_norm > total:
        assert all(np.array_equal(p.grad, b) for p, b in zip(params, before, strict=True))


def test_clip_grad_norm_edges():
    params = params_with_grads(dtype=np.float32)
    total = clip_grad_norm(params, 1.0)
    assert all(p.grad.dtype == np.float32 for p in params)
    new = math.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in params))
    assert total > 1.0
    assert abs(new - 1.0) < 1e-5
    assert clip_grad_norm([], 1.0) == 0.0
    single = Parameter(np.zeros(2))
    single.grad[...] = [3.0, 4.0]
    assert clip_grad_norm(single, 10.0) == 5.0


@pytest.mark.parametrize("scale", [1.0, 1e20])
def test_clip_grad_norm_float32_blocks(scale):
    # Several 65,536-entry blocks summed in float32, the block sums in float64; squares
    # that overflow float32 (scale 1e20) fall back to a float64 norm.
    rng = np.random.default_rng(3)
    params = [Parameter(np.zeros(n, dtype=np.float32)) for n in (150_001, 7)]
    for q in params:
        q.grad[...] = rng.standard_normal(q.shape) * scale
    exact = math.sqrt(sum(float((q.grad.astype(np.float64) ** 2).sum()) for q in params))
    total = clip_grad_norm(params, math.inf)
    assert math.isfinite(total)
    assert abs(total - exact) <= 1e-6 * exact


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_clip_grad_norm_nonfinite_returns_norm_and_leaves_grads(bad):
    params = params_with_grads()
    params[1].grad[2] = bad
    before = [p.grad.copy() for p in params]
    total = clip_grad_norm(params, 1.0)
    assert math.isnan(total) if math.isnan(bad) else total == math.inf
    for p, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(p.grad, b)
    with pytest.raises(ValueError, match="non-finite"):
        clip_grad_norm(params, 1.0, error_if_nonfinite=True)


def test_clip_grad_value_matches_torch():
    params = params_with_grads()
    tgrads = [torch.tensor(p.grad.copy()) for p in params]
    tparams = [torch.tensor(p.data) for p in params]
    for tp, g in zip(tparams, tgrads, strict=True):
        tp.grad = g
    clip_grad_value(params, 2.0)
    torch.nn.utils.clip_grad_value_(tparams, 2.0, foreach=False)
    for p, tp in zip(params, tparams, strict=True):
        np.testing.assert_array_equal(p.grad, tp.grad.numpy())
    assert max(np.abs(p.grad).max() for p in params) == 2.0


# -- bad arguments ------------------------------------------------------------------------
P = make_params()
BAD_ARGS = [
    (lambda: SGD(P, lr=-1.0), ValueError, "`lr`"),
    (lambda: SGD(P, lr=math.nan), ValueError, "`lr`"),
    (lambda: SGD(P, lr=True), TypeError, "`lr`"),
    (lambda: SGD(P, momentum=-0.1), ValueError, "`momentum`"),
    (lambda: SGD(P, weight_decay=-1e-3), ValueError, "`weight_decay`"),
    (lambda: SGD(P, nesterov=True), ValueError, "`nesterov=True` requires `momentum`"),
    (lambda: SGD(P, momentum=0.9, dampening=0.1, nesterov=True), ValueError, "`dampening`"),
    (lambda: SGD(P, nesterov=1), TypeError, "`nesterov`"),
    (lambda: SGD([]), ValueError, "`params`"),
    (lambda: SGD([np.zeros(3)]), TypeError, r"`params\[0\]`"),
    (lambda: SGD([P[0], P[0]]), ValueError, "`params`.*twice"),
    (lambda: SGD(Module()), TypeError, r"`params`.*model.parameters\(\)"),
    (lambda: Adagrad(P, lr_decay=-1.0), ValueError, "`lr_decay`"),
    (lambda: Adagrad(P, initial_accumulator_value=-1.0), ValueError, "initial_accumulator"),
    (lambda: Adagrad(P, eps=-1.0), ValueError, "`eps`"),
    (lambda: RMSprop(P, alpha=-0.5), ValueError, "`alpha`"),
    (lambda: RMSprop(P, momentum=-0.5), ValueError, "`momentum`"),
    (lambda: RMSprop(P, centered="yes"), TypeError, "`centered`"),
    (lambda: Adam(P, betas=(1.0, 0.999)), ValueError, r"`betas\[0\]`"),
    (lambda: Adam(P, betas=(0.9, -0.1)), ValueError, r"`betas\[1\]`"),
    (lambda: Adam(P, betas=(0.9,)), TypeError, "`betas`"),
    (lambda: Adam(P, eps=-1e-8), ValueError, "`eps`"),
    (lambda: AdamW(P, weight_decay=-0.01), ValueError, "`weight_decay`"),
    (lambda: AdamW(P, amsgrad=None), TypeError, "`amsgrad`"),
    (lambda: setattr(SGD(P), "lr", -0.5), ValueError, "`lr`"),
    (lambda: StepLR(SGD(P), step_size=0), ValueError, "`step_size`"),
    (lambda: StepLR(SGD(P), step_size=2.5), TypeError, "`step_size`"),
    (lambda: StepLR(SGD(P), step_size=2, gamma=0.0), ValueError, "`gamma`"),
    (lambda: StepLR(torch_sgd(), step_size=2), TypeError, "`optimizer`"),
    (lambda: ExponentialLR(SGD(P), gamma=-0.9), ValueError, "`gamma`"),
    (lambda: CosineAnnealingLR(SGD(P), T_max=0), ValueError, "`T_max`"),
    (lambda: CosineAnnealingLR(SGD(P), T_max=5, eta_min=-1.0), ValueError, "`eta_min`"),
    (lambda: LambdaLR(SGD(P), 0.5), TypeError, "`lr_lambda`"),
    (lambda: LambdaLR(SGD(P), lambda e: -1.0), ValueError, r"`lr_lambda\(0\)`"),
    (lambda: ReduceLROnPlateau(SGD(P), mode="avg"), ValueError, "`mode`"),
    (lambda: ReduceLROnPlateau(SGD(P), factor=1.0), ValueError, "`factor`"),
    (lambda: ReduceLROnPlateau(SGD(P), patience=-1), ValueError, "`patience`"),
    (lambda: ReduceLROnPlateau(SGD(P), threshold_mode="x"), ValueError, "`threshold_mode`"),
    (lambda: ReduceLROnPlateau(SGD(P), cooldown=-1), ValueError, "`cooldown`"),
    (lambda: ReduceLROnPlateau(SGD(P), min_lr=-1.0), ValueError, "`min_lr`"),
    (lambda: clip_grad_norm(P, -1.0), ValueError, "`max_norm`"),
    (lambda: clip_grad_norm(P, 1.0, norm_type=0.0), ValueError, "`norm_type`"),
    (lambda: clip_grad_value(P, -1.0), ValueError, "`clip_value`"),
    (lambda: clip_grad_value([np.zeros(2)], 1.0), TypeError, r"`params\[0\]`"),
]


@pytest.mark.parametrize(("call", "exc", "match"), BAD_ARGS, ids=[m for _, _, m in BAD_ARGS])
def test_bad_arguments_raise_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
