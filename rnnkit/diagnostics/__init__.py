"""Diagnostics: finite-difference gradient checks of ops and modules."""

from rnnkit.diagnostics.gradcheck import (
    GradcheckEntry,
    GradcheckReport,
    gradcheck_module,
    gradcheck_op,
    numerical_gradient,
    relative_error,
)

__all__ = [
    "GradcheckEntry",
    "GradcheckReport",
    "gradcheck_module",
    "gradcheck_op",
    "numerical_gradient",
    "relative_error",
]
