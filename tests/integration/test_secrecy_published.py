"""Issue 20 item 1: nothing about a suppressed cell is published.

An attacker reads only what is published (the warehouse's ``latest_*`` views, the export files)
and looks, for every cell whose ``secret_status`` is not ``V``, for any column from which its
value, numerator, denominator or unit count could be derived. Before the fix, the shrinkage weight
and ``n_units`` of a suppressed cell were published (with a published neighbour in the same zone
d'emploi they gave back its numerator and denominator)."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from .reliability_world import published_template

DERIVABLE = ("value", "value_raw", "numerator", "denominator", "shrink_weight", "n_units")


def _published_long(data):
    engine = sa.create_engine(f"sqlite:///{data}/warehouse.db")
    try:
        with engine.connect() as conn:
            view = pd.read_sql(sa.text("SELECT * FROM latest_indicator_values"), conn)
    finally:
        engine.dispose()
    files = sorted((data / "exports" / "latest").glob("indicator_values_*.parquet"))
    assert files, "the long export is published"
    return view, pd.read_parquet(files[0])


def test_no_derivable_column_for_a_suppressed_cell(tmp_path_factory):
    data = published_template(tmp_path_factory)
    view, export = _published_long(data)
    for name, df in (("latest_indicator_values", view), ("indicator_values export", export)):
        secret = df[df["secret_status"] != "V"]
        assert len(secret) > 100, f"{name}: the sample release has suppressed cells to attack"
        leaks = {c: int(secret[c].notna().sum()) for c in DERIVABLE if c in secret.columns}
        assert leaks == dict.fromkeys(leaks, 0), f"{name}: columns published for suppressed cells: {leaks}"
        shown = df[df["secret_status"] == "V"]
        assert shown["value"].notna().any() and shown["shrink_weight"].notna().all()  # not everything blanked


def test_wide_exports_leave_suppressed_cells_empty(tmp_path_factory):
    data = published_template(tmp_path_factory)
    view, _ = _published_long(data)
    wide = pd.read_parquet(next((data / "exports" / "latest").glob("indicateurs_territoires_*[!_fr].parquet")))
    secret = view[(view["secret_status"] != "V")]
    keyed = wide.set_index(["level", "territory_id"])
    checked = 0
    for r in secret.itertuples():
        if r.indicator_id in keyed.columns and (r.level, r.territory_id) in keyed.index:
            assert pd.isna(keyed.at[(r.level, r.territory_id), r.indicator_id]), (r.level, r.territory_id, r.indicator_id)
            checked += 1
    assert checked > 100
