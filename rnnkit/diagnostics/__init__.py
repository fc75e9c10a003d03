"""Diagnostics: finite-difference gradient checks, gradient flow through time."""

from rnnkit.diagnostics.gradcheck import (
    GradcheckEntry,
    GradcheckReport,
    gradcheck_module,
    gradcheck_op,
    numerical_gradient,
    relative_error,
)
from rnnkit.diagnostics.gradient_flow import GradientFlow, gradient_flow, model_gradient_flow

__all__ = [
    "GradcheckEntry",
    "GradcheckReport",
    "GradientFlow",
    "gradcheck_module",
    "gradcheck_op",
    "gradient_flow",
    "model_gradient_flow",
    "numerical_gradient",
    "relative_error",
]
