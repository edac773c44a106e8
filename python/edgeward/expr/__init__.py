"""edgeward's CEL: the pure-Python reference of the CEL part of
`edgeward_native` (docs/cel.md is the contract both twins implement).

Use it through `edgeward.native`, which picks the active backend."""

from edgeward.expr.env import Env
from edgeward.expr.errors import EvalError, PolicyExprError
from edgeward.expr.interpolate import Template, interpolate
from edgeward.expr.program import Program, compile
from edgeward.expr.values import UInt

__all__ = [
    "Env",
    "EvalError",
    "PolicyExprError",
    "Program",
    "Template",
    "UInt",
    "compile",
    "interpolate",
]
