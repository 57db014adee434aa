"""Feature-space operators applied before the probes, one module each, registered in :data:`OPERATORS`.

The contract (:class:`~pipeline.operators.base.Operator`): keyword-only hyper-parameters with their
defaults in ``hyper`` (their grids live in ``params.yaml`` under ``params_key``), a ``scope`` that says
which rows a map of one domain depends on, ``uses`` (text only, or unlabelled images), and
``fit(X, domains, sources)`` / ``transform(X, domains)``. Fits see unlabelled train-split rows only.
"""
from ..registry import Registry
from .base import Operator, l2_normalize

OPERATORS: Registry = Registry("operator", "operators.names", __name__)

__all__ = ["OPERATORS", "Operator", "check_sections", "l2_normalize"]


def check_sections(sections: dict) -> None:
    """Refuse (ParamsError naming the key, with the closest valid one) an ``operators.<name>`` section
    that names no registered operator with params there, or a hyper-parameter it does not declare, or a
    value out of its bounds."""
    from ..errors import ParamsError, did_you_mean

    own = [n for n in OPERATORS.names() if OPERATORS[n].section() == f"operators.{n}"]
    for name, section in sections.items():
        if name not in own:
            raise ParamsError(f"operators.{name}: unknown key" + did_you_mean(name, ["names", *own], "operators.{}", cutoff=0.5))
        try:
            OPERATORS[name].check_hyper(section, f"operators.{name}")
        except ValueError as exc:
            raise ParamsError(str(exc)) from None
