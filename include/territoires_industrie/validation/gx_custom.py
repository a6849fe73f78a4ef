"""Three project-specific Great Expectations expectations (GX 1.x), registered on import.

This module imports Great Expectations at top level: import it only inside functions
(never from a DAG file or at package import time).

- ``ExpectColumnValuesToBeInReferenceSet`` (``expect_column_values_to_be_in_reference_set``):
  every value belongs to a *named* reference code list (the communes of the COG vintage,
  the EPCI list, the NAF table...). The built-in ``expect_column_values_to_be_in_set``
  carries its value set inside the expectation configuration, and GX 1.24 re-serialises
  that configuration (pydantic) about a hundred times per run: with the 34,945 communes
  of the COG it costs ~3 s per expectation whatever the batch size. Here the
  configuration carries only the reference *name*; the codes live in
  :data:`REFERENCE_SETS`, filled by the gate runner just before validation.
- ``ExpectColumnDtypeToBeKind`` (``expect_column_dtype_to_be_kind``): the column's pandas
  dtype is of a kind (``string``, ``integer``, ``numeric``, ``bool``). GX's
  ``expect_column_values_to_be_in_type_list`` does not recognise pandas 3's default
  ``str`` dtype nor nullable ``Int64`` (measured with GX 1.24.1 / pandas 3.1.1).
"""

from __future__ import annotations

import os
from typing import ClassVar, Dict, Optional

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from great_expectations.execution_engine import PandasExecutionEngine  # noqa: E402
from great_expectations.expectations.expectation import (  # noqa: E402
    ColumnAggregateExpectation,
    ColumnMapExpectation,
)
from great_expectations.expectations.metrics.column_aggregate_metric_provider import (  # noqa: E402
    ColumnAggregateMetricProvider,
    column_aggregate_value,
)
from great_expectations.expectations.metrics.map_metric_provider import (  # noqa: E402
    ColumnMapMetricProvider,
    column_condition_partial,
)

#: reference name -> frozenset of codes; filled by :func:`register_reference_sets`.
REFERENCE_SETS: dict[str, frozenset] = {}

DTYPE_KINDS = ("string", "integer", "numeric", "bool")


def register_reference_sets(sets: dict[str, frozenset]) -> None:
    REFERENCE_SETS.update({k: frozenset(v) for k, v in sets.items()})


class ColumnValuesInReferenceSet(ColumnMapMetricProvider):
    condition_metric_name = "column_values.ti_in_reference_set"
    condition_value_keys = ("reference",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, reference, **kwargs):
        if reference not in REFERENCE_SETS:
            raise KeyError(f"reference set {reference!r} is not registered (known: {sorted(REFERENCE_SETS)})")
        return column.isin(REFERENCE_SETS[reference])


class ExpectColumnValuesToBeInReferenceSet(ColumnMapExpectation):
    """Expect every non-null value of the column to belong to a named reference code list."""

    reference: str
    map_metric: ClassVar[str] = "column_values.ti_in_reference_set"
    success_keys: ClassVar[tuple] = ("reference", "mostly")
    args_keys: ClassVar[tuple] = ("column", "reference")


class ColumnValuesPlausibleCount(ColumnMapMetricProvider):
    condition_metric_name = "column_values.ti_plausible_count"
    condition_value_keys = ("max_value", "integer")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, max_value, integer, **kwargs):
        import numpy as np

        v = column.astype("float64").to_numpy()
        ok = np.isfinite(v) & (v >= 0) & (v <= float(max_value))
        if integer:
            ok &= np.floor(v) == v
        return ok


class ExpectColumnValuesToBePlausibleCounts(ColumnMapExpectation):
    """Expect every non-null value to be a count by meaning: finite (no inf, no NaN text), >= 0,
    <= ``max_value`` (a plausible ceiling, e.g. "a commune cannot have more jobs than France")
    and, when ``integer``, a whole number."""

    max_value: float
    integer: bool = True
    map_metric: ClassVar[str] = "column_values.ti_plausible_count"
    success_keys: ClassVar[tuple] = ("max_value", "integer", "mostly")
    args_keys: ClassVar[tuple] = ("column", "max_value", "integer")


def dtype_kind(dtype) -> str:
    import pandas as pd
    from pandas.api import types as pdt

    if pdt.is_bool_dtype(dtype):
        return "bool"
    if pdt.is_integer_dtype(dtype):
        return "integer"
    if pdt.is_float_dtype(dtype):
        return "float"
    if isinstance(dtype, pd.StringDtype) or pdt.is_string_dtype(dtype):
        return "string"
    return str(dtype)


class ColumnDtypeKind(ColumnAggregateMetricProvider):
    metric_name = "column.ti_dtype_kind"
    value_keys = ()

    @column_aggregate_value(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return dtype_kind(column.dtype)


_ACCEPTED = {
    "string": {"string"},
    "integer": {"integer"},
    "numeric": {"integer", "float"},
    "bool": {"bool"},
}


class ExpectColumnDtypeToBeKind(ColumnAggregateExpectation):
    """Expect the pandas dtype of the column to be of a kind: string, integer, numeric or bool."""

    kind: str
    metric_dependencies: ClassVar[tuple] = ("column.ti_dtype_kind",)
    success_keys: ClassVar[tuple] = ("kind",)
    args_keys: ClassVar[tuple] = ("column", "kind")

    def _validate(
        self,
        metrics: Dict,
        runtime_configuration: Optional[dict] = None,
        execution_engine=None,
    ):
        observed = metrics["column.ti_dtype_kind"]
        kind = self.configuration.kwargs["kind"]
        if kind not in _ACCEPTED:
            raise ValueError(f"unknown dtype kind {kind!r}; one of {DTYPE_KINDS}")
        return {"success": observed in _ACCEPTED[kind], "result": {"observed_value": observed}}
