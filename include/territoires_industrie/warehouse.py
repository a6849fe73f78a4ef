"""The warehouse: SQLAlchemy engine, documented schema, atomic release publication.

Every publication is one release (keyed by its period, e.g. ``2026-11``), written inside a
single transaction: the rows of that release are replaced and the ``current_release``
pointer is moved in the same commit. Readers of the ``latest_*`` views therefore see the
previous complete release or the new one, never a mix. Re-publishing a period replaces
it (idempotent). SQLite file by default, PostgreSQL in production (same code).
"""

from __future__ import annotations

import io
import json
import logging

import pandas as pd
import sqlalchemy as sa

from . import __version__

log = logging.getLogger(__name__)
metadata = sa.MetaData()

releases = sa.Table(
    "releases", metadata,
    sa.Column("release_id", sa.String(32), primary_key=True, comment="period key, YYYY-MM of the SIRENE stock vintage"),
    sa.Column("status", sa.String(16), nullable=False, comment="complete"),
    sa.Column("pipeline_version", sa.String(32), nullable=False),
    sa.Column("source_vintages", sa.Text, nullable=False, comment="JSON: as-of date of every input, read from the data"),
    sa.Column("synthetic", sa.Boolean, nullable=False, comment="true when sample (SYNTHETIC) inputs fed the release"),
    sa.Column("n_indicator_values", sa.Integer, nullable=False),
    sa.Column("validation_status", sa.String(16), nullable=True, comment="passed / warnings"),
    comment="One row per published release",
)
current_release = sa.Table(
    "current_release", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("release_id", sa.String(32), nullable=False),
    comment="Single-row pointer to the newest complete release",
)
territories = sa.Table(
    "territories", metadata,
    sa.Column("release_id", sa.String(32), primary_key=True),
    sa.Column("level", sa.String(16), primary_key=True, comment="commune, epci, ze, departement, region, ti"),
    sa.Column("territory_id", sa.String(16), primary_key=True, comment="official code (EPCI SIREN, ZE2020, TI id...)"),
    sa.Column("label", sa.Text),
    sa.Column("departement", sa.String(3), comment="main département (most communes)"),
    sa.Column("region", sa.String(2), comment="main région"),
    sa.Column("n_communes", sa.Integer),
    sa.Column("population", sa.Float, comment="census population (RP), persons"),
    sa.Column("ti_phase", sa.String(16), comment="Territoire d'industrie phase (2018-2022 / 2023-2027), level ti only"),
)
indicator_values = sa.Table(
    "indicator_values", metadata,
    sa.Column("release_id", sa.String(32), primary_key=True),
    sa.Column("level", sa.String(16), primary_key=True),
    sa.Column("territory_id", sa.String(16), primary_key=True),
    sa.Column("indicator_id", sa.String(48), primary_key=True),
    sa.Column("period", sa.String(64), primary_key=True, comment="reference period of the value (year, quarters, \"a..b -> c..d\" for changes)"),
    sa.Column("value", sa.Float, comment="published value in `unit` (shrunk when shrinkage applies; NULL when secret)"),
    sa.Column("numerator", sa.Float, comment="count behind the value (NULL when secret)"),
    sa.Column("denominator", sa.Float, comment="count behind the value (NULL when secret)"),
    sa.Column("unit", sa.String(24)),
    sa.Column("value_raw", sa.Float, comment="observed value before shrinkage (NULL when secret or class-only)"),
    sa.Column("shrink_weight", sa.Float, comment="empirical-Bayes weight of the observed value (1.0 = no shrinkage)"),
    sa.Column("reliable", sa.Boolean, comment="reliability minimum met (counts behind the value)"),
    sa.Column("secret_status", sa.String(1), comment="V published, A frequency, B dominance, D secondary"),
    sa.Column("n_units", sa.Float, comment="units (establishments) behind the cell"),
    sa.Column("domain", sa.String(1), comment="A-D scored domains, G context gate, X count/context"),
    sa.Column("direction", sa.Integer, comment="+1: higher = more difficulty; -1: higher = stronger base"),
    comment="One row per territory x level x indicator x period",
)
indicator_dictionary = sa.Table(
    "indicator_dictionary", metadata,
    sa.Column("release_id", sa.String(32), primary_key=True),
    sa.Column("indicator_id", sa.String(48), primary_key=True),
    sa.Column("label_fr", sa.Text),
    sa.Column("unit", sa.String(24)),
    sa.Column("formula", sa.Text),
    sa.Column("source", sa.Text),
    sa.Column("period", sa.String(64)),
    sa.Column("domain", sa.String(1)),
    sa.Column("direction", sa.Integer),
    sa.Column("reliability_min", sa.Text),
)
composite = sa.Table(
    "composite", metadata,
    sa.Column("release_id", sa.String(32), primary_key=True),
    sa.Column("level", sa.String(16), primary_key=True),
    sa.Column("territory_id", sa.String(16), primary_key=True),
    sa.Column("reference_set", sa.String(16), primary_key=True,
              comment="ranking set: epci, ze, departement, region, ti_2018_2022, ti_2023_2027"),
    sa.Column("score", sa.Float, comment="composite 0-100: weighted exponential-transformed domain ranks"),
    *[sa.Column(f"domain_{d}", sa.Float, comment=f"domain {d.upper()} transformed score 0-100") for d in "abcd"],
    sa.Column("rank_national", sa.Integer, comment="1 = most difficult of the set"),
    sa.Column("rank_regional", sa.Float, comment="1 = most difficult of the set within the région"),
    sa.Column("percentile_national", sa.Float),
    sa.Column("percentile_regional", sa.Float),
    sa.Column("decile", sa.Integer, comment="10 = the 10 % most difficult"),
    sa.Column("mc_rank_median", sa.Float, comment="Monte Carlo median rank"),
    sa.Column("mc_rank_p05", sa.Float, comment="Monte Carlo 5th percentile rank"),
    sa.Column("mc_rank_p95", sa.Float, comment="Monte Carlo 95th percentile rank"),
    sa.Column("p_top10", sa.Float, comment="share of draws in the top 10 %"),
    sa.Column("p_top20", sa.Float, comment="share of draws in the top 20 %"),
    sa.Column("uncertain", sa.Boolean, comment="90 % rank interval straddles the top-10 % or top-20 % threshold"),
    sa.Column("gate_industrial", sa.Boolean, comment="industrial territory: LQ >= 1 and industrial jobs >= 500"),
    sa.Column("n_reference", sa.Integer, comment="size of the ranking set"),
    sa.Column("region", sa.String(2)),
    sa.Column("n_indicators_missing", sa.Integer),
    sa.Column("mc_mean_rank_shift", sa.Float),
    comment="Composite difficulty index with its Monte Carlo uncertainty, one row per territory and ranking set",
)
RELEASE_TABLES = {"territories": territories, "indicator_values": indicator_values,
                  "indicator_dictionary": indicator_dictionary, "composite": composite}

# RESTRICTED (candidacy review, issue 6): written with each release in the same transaction,
# never exported, never shown in the report, never in a ``latest_*`` view. Unmasked counts are
# confidential business information: they are kept only so that any group of EPCI can be
# recomputed (and its cells protected) against the release that was published.
review_inputs = sa.Table(
    "review_inputs", metadata,
    sa.Column("release_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(48), primary_key=True,
              comment="counts, reference_models, meta, membership, passage, adjacency (see review/inputs.py)"),
    sa.Column("payload", sa.Text, nullable=False, comment="JSON document"),
    comment="RESTRICTED: unmasked counts, fitted reference sets and perimeters for the candidacy review; never exported",
)
RESTRICTED_TABLES = {"review_inputs": review_inputs}

LATEST_VIEWS = {
    "latest_indicator_values": "indicator_values",
    "latest_territories": "territories",
    "latest_indicator_dictionary": "indicator_dictionary",
    "latest_composite": "composite",
}


def get_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(url, future=True)


def _add_missing_columns(engine: sa.Engine) -> None:
    """Additive migration: columns added to a table definition are added to an existing
    warehouse (nullable, at the end), so an older warehouse keeps working."""
    insp = sa.inspect(engine)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if not insp.has_table(table.name):
                continue
            have = {c["name"] for c in insp.get_columns(table.name)}
            for c in table.columns:
                if c.name not in have:
                    ctype = c.type.compile(dialect=engine.dialect)
                    conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {c.name} {ctype}"))
                    log.info("warehouse: added column %s.%s (%s)", table.name, c.name, ctype)


def init_schema(engine: sa.Engine) -> None:
    metadata.create_all(engine)
    _add_missing_columns(engine)
    with engine.begin() as conn:
        for view, table in LATEST_VIEWS.items():
            body = (
                f"SELECT t.* FROM {table} t JOIN current_release c ON t.release_id = c.release_id"
            )
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text(f"CREATE OR REPLACE VIEW {view} AS {body}"))
            else:
                conn.execute(sa.text(f"CREATE VIEW IF NOT EXISTS {view} AS {body}"))
    _restrict(engine)


def _restrict(engine: sa.Engine) -> None:
    """PostgreSQL: the restricted tables are readable by their owner only. Default privileges
    (``ALTER DEFAULT PRIVILEGES ... GRANT SELECT ON TABLES TO ti_reader``, deploy/postgres-init.sh)
    hand every new table to the analysts' read-only role; this revokes them on the restricted
    tables, whoever the grantee, at every publication."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for name in RESTRICTED_TABLES:
            grantees = conn.execute(sa.text(
                "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
                "WHERE table_schema = current_schema() AND table_name = :t AND grantee <> current_user"),
                {"t": name}).scalars().all()
            conn.execute(sa.text(f"REVOKE ALL ON TABLE {name} FROM PUBLIC"))
            for g in grantees:  # role names read from the catalogue, quoted as identifiers
                if g != "PUBLIC":
                    ident = conn.dialect.identifier_preparer.quote(g)
                    conn.execute(sa.text(f"REVOKE ALL ON TABLE {name} FROM {ident}"))


INSERT_ROWS = 50_000


def _insert(conn: sa.Connection, table: sa.Table, df: pd.DataFrame) -> None:
    if df.empty:
        return
    cols = [c.name for c in table.columns]
    df = df.reindex(columns=cols)  # columns a producer does not (yet) provide are NULL
    # in slices, inside the caller's one transaction: the national release is 736k value rows,
    # and as one list of Python dicts (or one CSV string) it held ~1 GB (issue 19)
    for start in range(0, len(df), INSERT_ROWS):
        part = df.iloc[start:start + INSERT_ROWS]
        if conn.dialect.name == "postgresql":
            _copy(conn, table, part)
        else:
            conn.execute(table.insert(), part.astype(object).where(part.notna(), None).to_dict("records"))


def _copy(conn: sa.Connection, table: sa.Table, df: pd.DataFrame) -> None:
    """Bulk load with COPY on PostgreSQL (10-30x faster than INSERTs), inside the open transaction."""
    df = df.copy()
    for c in table.columns:  # an integer column holding NULLs arrives as float ("3.0" is refused by COPY)
        if isinstance(c.type, sa.Integer) and c.name in df and df[c.name].dtype.kind == "f":
            df[c.name] = df[c.name].round().astype("Int64")
    buf = io.StringIO()
    df.to_csv(buf, index=False, header=False, na_rep="\\N")
    buf.seek(0)
    raw = conn.connection.driver_connection
    sql = f"COPY {table.name} ({', '.join(c.name for c in table.columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    try:
        with raw.cursor() as cur:
            cur.copy_expert(sql, buf)
    except conn.dialect.loaded_dbapi.Error as exc:  # same exception classes as the INSERT path (sa.exc.IntegrityError...)
        raise sa.exc.DBAPIError.instance(sql, None, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect) from exc


class PublishConflict(RuntimeError):
    """Two publications of the same warehouse collided, or a staged release vanished."""


#: Status of the rows of a release being built (invisible: not ``complete``, not current).
BUILDING = "building"


def _release_row(release_id: str, status: str, n_values: int, meta: dict) -> dict:
    return {"release_id": release_id, "status": status, "pipeline_version": __version__,
            "source_vintages": json.dumps(meta.get("source_vintages", {}), sort_keys=True),
            "synthetic": bool(meta.get("synthetic", False)), "n_indicator_values": n_values,
            "validation_status": meta.get("validation_status")}


def building_key(release_id: str) -> str:
    """Warehouse key of a release while it is built: ``<release>~<start time><random>``
    (unique per publication run, fits ``String(32)``, sorts after nothing a reader uses)."""
    import secrets
    import time

    return f"{release_id}~{int(time.time()):08x}{secrets.token_hex(3)}"


def stage_release(engine: sa.Engine, release_id: str, tables: dict[str, pd.DataFrame], meta: dict) -> str:
    """Write every row of ``release_id`` under a private building key, in one transaction.

    Nothing a reader uses changes: the rows are not ``complete``, not current, in no
    ``latest_*`` view. :func:`switch_release` makes them the release; :func:`discard_staged`
    removes them. Returns the building key."""
    init_schema(engine)
    key = building_key(release_id)
    n_values = int(len(tables["indicator_values"]))
    with engine.begin() as conn:
        for name, table in {**RELEASE_TABLES, **RESTRICTED_TABLES}.items():
            if tables.get(name) is None:
                continue
            df = tables[name].copy()
            df.insert(0, "release_id", key)
            _insert(conn, table, df)
        conn.execute(releases.insert().values(**_release_row(key, BUILDING, n_values, meta)))
    log.info("staged release %s under %s: %d indicator values", release_id, key, n_values)
    return key


def staged_counts(engine: sa.Engine, key: str) -> dict[str, int]:
    """Rows held under ``key`` per table (to verify a staged release before the switch)."""
    with engine.connect() as conn:
        return {name: int(conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.release_id == key))
                          .scalar_one()) for name, t in {**RELEASE_TABLES, **RESTRICTED_TABLES}.items()}


def staged_keys(engine: sa.Engine) -> list[str]:
    """Building keys left in the warehouse (a publication in progress, or one that was killed)."""
    if not sa.inspect(engine).has_table("releases"):
        return []
    with engine.connect() as conn:
        return list(conn.execute(sa.select(releases.c.release_id).where(releases.c.status == BUILDING)
                                 .order_by(releases.c.release_id)).scalars())


def discard_staged(engine: sa.Engine, key: str) -> None:
    """Delete every row of the building key ``key`` (a killed or refused publication)."""
    if "~" not in key:
        raise ValueError(f"{key!r} is not a building key")
    with engine.begin() as conn:
        for table in (*RELEASE_TABLES.values(), *RESTRICTED_TABLES.values(), releases):
            conn.execute(table.delete().where(table.c.release_id == key))
    log.info("discarded staged rows %s", key)


def switch_release(engine: sa.Engine, release_id: str, key: str) -> dict:
    """The commit point of a publication: in ONE transaction, the rows staged under ``key``
    become release ``release_id`` (replacing an earlier publication of that period), its
    status becomes ``complete`` and ``current_release`` points at the newest complete release.

    Concurrent switches are serialised (PostgreSQL: table lock on ``current_release``; SQLite:
    the database write lock). :class:`PublishConflict` when ``key`` holds nothing any more."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("LOCK TABLE current_release IN EXCLUSIVE MODE"))
        else:  # take SQLite's write lock now, before reading
            conn.execute(current_release.delete().where(sa.false()))
        row = conn.execute(sa.select(releases.c.n_indicator_values).where(
            (releases.c.release_id == key) & (releases.c.status == BUILDING))).scalar_one_or_none()
        if row is None:
            raise PublishConflict(f"release {release_id}: the staged rows {key} are gone (another publication of "
                                  f"the same warehouse cleaned or switched them); run the publication again")
        for table in (*RELEASE_TABLES.values(), *RESTRICTED_TABLES.values()):
            conn.execute(table.delete().where(table.c.release_id == release_id))
            conn.execute(table.update().where(table.c.release_id == key).values(release_id=release_id))
        conn.execute(releases.delete().where(releases.c.release_id == release_id))
        conn.execute(releases.update().where(releases.c.release_id == key)
                     .values(release_id=release_id, status="complete"))
        newest = conn.execute(
            sa.select(sa.func.max(releases.c.release_id)).where(releases.c.status == "complete")
        ).scalar_one()
        conn.execute(current_release.delete())
        conn.execute(current_release.insert().values(id=1, release_id=newest))
    log.info("switched release %s: %d indicator values (current release: %s)", release_id, row, newest)
    return {"release_id": release_id, "indicator_values": int(row), "current_release": newest}


def publish_release(engine: sa.Engine, release_id: str, tables: dict[str, pd.DataFrame], meta: dict) -> dict:
    """Atomically replace release ``release_id`` and point ``current_release`` at it
    (stage under a building key, then switch: readers see the old or the new release)."""
    key = stage_release(engine, release_id, tables, meta)
    try:
        return switch_release(engine, release_id, key)
    except BaseException:
        try:
            discard_staged(engine, key)
        except Exception:  # noqa: BLE001 - the original error matters; leftovers are cleaned by the next run
            log.warning("could not discard staged rows %s; the next publication removes them", key)
        raise


def rollback(engine: sa.Engine, to_release: str) -> dict:
    """Make ``to_release`` (a complete release) current again, in one transaction.

    Every newer release is marked ``withdrawn`` (its rows are kept, it leaves the ``latest_*``
    views and the release list); re-publishing a withdrawn period makes it complete again.
    KeyError (naming the complete releases) when ``to_release`` is not a complete release."""
    init_schema(engine)
    with engine.begin() as conn:
        known = conn.execute(sa.select(releases.c.release_id).where(releases.c.status == "complete")
                             .order_by(releases.c.release_id)).scalars().all()
        if to_release not in known:
            raise KeyError(f"release {to_release!r} is not a complete release in the warehouse "
                           f"(complete releases: {', '.join(known) or 'none'})")
        previous = conn.execute(sa.select(current_release.c.release_id)).scalar_one_or_none()
        newer = [r for r in known if r > to_release]
        if newer:
            conn.execute(releases.update().where(releases.c.release_id.in_(newer)).values(status="withdrawn"))
        conn.execute(current_release.delete())
        conn.execute(current_release.insert().values(id=1, release_id=to_release))
    log.info("rollback: current release %s -> %s (withdrawn: %s)", previous, to_release, newer or "none")
    return {"previous_current": previous, "current_release": to_release, "withdrawn": newer}


def read_latest(engine: sa.Engine, view: str = "latest_indicator_values") -> pd.DataFrame:
    if view not in LATEST_VIEWS:
        raise ValueError(f"unknown view {view!r}")
    with engine.connect() as conn:
        return pd.read_sql(sa.text(f"SELECT * FROM {view}"), conn)


def current_release_id(engine: sa.Engine) -> str | None:
    insp = sa.inspect(engine)
    if not insp.has_table("current_release"):
        return None
    with engine.connect() as conn:
        return conn.execute(sa.select(current_release.c.release_id)).scalar_one_or_none()


# --- reading published releases (report, exports, comparisons) ---------------------------

PUBLISHED_TABLES = ("releases", *RELEASE_TABLES)


def _typed(df: pd.DataFrame, table: sa.Table) -> pd.DataFrame:
    """Give a table read back from SQLite or PostgreSQL the same dtypes on both: codes as
    strings, integers as nullable ``Int64``, booleans as nullable ``boolean``."""
    df = df.reindex(columns=[c.name for c in table.columns])
    for c in table.columns:
        s = df[c.name]
        if isinstance(c.type, sa.Boolean):
            df[c.name] = s.astype("boolean")
        elif isinstance(c.type, sa.Integer):
            df[c.name] = pd.to_numeric(s).astype("Int64")
        elif isinstance(c.type, sa.Float):
            df[c.name] = pd.to_numeric(s).astype("float64")
        else:
            df[c.name] = s.astype("str")
    return df


def list_releases(engine: sa.Engine) -> pd.DataFrame:
    """Every complete release, oldest first (empty when nothing was published)."""
    if not sa.inspect(engine).has_table("releases"):
        return _typed(pd.DataFrame(), releases)
    with engine.connect() as conn:
        df = pd.read_sql(sa.select(releases).where(releases.c.status == "complete").order_by(releases.c.release_id), conn)
    return _typed(df, releases)


def release_meta(engine: sa.Engine, release_id: str, *, staged_key: str | None = None) -> dict:
    """The ``releases`` row of ``release_id`` with ``source_vintages`` decoded; KeyError if unknown.

    ``staged_key``: read the row of a release being built under that key instead (presented
    as ``release_id``, status ``complete``: what it will be once switched)."""
    if staged_key is not None:
        with engine.connect() as conn:
            df = pd.read_sql(sa.select(releases).where(releases.c.release_id == staged_key), conn)
        rel = _typed(df, releases).assign(release_id=release_id, status="complete")
    else:
        rel = list_releases(engine)
    row = rel[rel["release_id"] == release_id]
    if row.empty:
        known = ", ".join(rel["release_id"]) or "none"
        raise KeyError(f"release {release_id!r} is not in the warehouse (complete releases: {known})")
    meta = {k: (None if pd.isna(v) else v) for k, v in row.iloc[0].to_dict().items()}
    meta["source_vintages"] = json.loads(meta.get("source_vintages") or "{}")
    meta["synthetic"] = bool(meta.get("synthetic"))
    return meta


def read_release_row(meta: dict) -> pd.DataFrame:
    """The ``releases`` row of :func:`release_meta` as a one-row table (same dtypes as
    :func:`list_releases`)."""
    row = {c.name: meta.get(c.name) for c in releases.columns}
    row["source_vintages"] = json.dumps(meta.get("source_vintages") or {}, sort_keys=True)
    return _typed(pd.DataFrame([row]), releases)


def read_release(engine: sa.Engine, release_id: str, table: str) -> pd.DataFrame:
    """All rows of one published table for one release, ordered by the primary key, with
    stable dtypes. A table the warehouse does not hold yet reads as empty (same columns)."""
    if table == "releases":
        rel = list_releases(engine)
        return rel[rel["release_id"] == release_id].reset_index(drop=True)
    if table not in RELEASE_TABLES:
        raise ValueError(f"unknown published table {table!r}; one of {PUBLISHED_TABLES}")
    t = RELEASE_TABLES[table]
    insp = sa.inspect(engine)
    if not insp.has_table(table):
        return _typed(pd.DataFrame(), t)
    have = {c["name"] for c in insp.get_columns(table)}
    cols = [c for c in t.columns if c.name in have]  # an older warehouse may lack newer columns
    query = sa.select(*cols).where(t.c.release_id == release_id).order_by(*t.primary_key.columns)
    with engine.connect() as conn:
        df = pd.read_sql(query, conn)
    return _typed(df, t).reset_index(drop=True)


def previous_release_id(engine: sa.Engine, release_id: str) -> str | None:
    """The newest complete release strictly older than ``release_id`` (None for the first)."""
    older = [r for r in list_releases(engine)["release_id"] if r < release_id]
    return older[-1] if older else None


#: Meaning of the columns whose table definition carries no comment (documentation only).
_COLUMN_DOCS = {
    "release_id": "release key (YYYY-MM of the SIRENE stock vintage); joins every table to `releases`",
    "level": "territorial level: commune, epci, ze, departement, region, ti",
    "territory_id": "official code: commune INSEE code, EPCI SIREN, ZE2020, département, région, TI id",
    "releases.pipeline_version": "version of the territoires-industrie-indicators package that computed the release",
    "releases.n_indicator_values": "rows of `indicator_values` in the release",
    "territories.n_communes": "communes in the territory (COG vintage of the release)",
    "territories.label": "official name (COG) or Territoire d'industrie name",
    "indicator_values.unit": "unit of `value`: %, % sur 3 ans, points, ratio, emplois, établissements, habitants, "
                             "classe 1-5",
    "indicator_dictionary.label_fr": "French label (used as column header in the exports)",
    "indicator_dictionary.unit": "unit of the values",
    "indicator_dictionary.formula": "formula as published",
    "indicator_dictionary.source": "producer and dataset",
    "indicator_dictionary.period": "reference period of the values in this release",
    "indicator_dictionary.domain": "A-D scored domains, G context gate, X count/context",
    "indicator_dictionary.direction": "+1: higher = more difficulty; -1: higher = stronger base",
    "indicator_dictionary.reliability_min": "minimum counts for the value to be flagged reliable",
    "composite.percentile_national": "0-100, higher = more difficult than a larger share of the set",
    "composite.percentile_regional": "same, within the région",
    "composite.region": "région of the territory (main région)",
    "composite.n_indicators_missing": "scored indicators missing (secret or not computable) for this territory",
    "composite.mc_mean_rank_shift": "mean absolute rank shift over the Monte Carlo draws",
}


def schema_markdown() -> str:
    """The documented schema of every published table (``docs/report.md`` embeds this text;
    a test checks the real warehouse against it)."""
    lines = []
    for table in (releases, *RELEASE_TABLES.values()):
        lines += [f"### `{table.name}`", ""]
        if table.comment:
            lines += [table.comment + ".", ""]
        lines += ["| column | type | key | meaning |", "|---|---|---|---|"]
        for c in table.columns:
            ctype = type(c.type).__name__.upper()
            if getattr(c.type, "length", None):
                ctype += f"({c.type.length})"
            key = "PK" if c.primary_key else ""
            doc = c.comment or _COLUMN_DOCS.get(f"{table.name}.{c.name}") or _COLUMN_DOCS.get(c.name, "")
            lines.append(f"| `{c.name}` | {ctype} | {key} | {doc.replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines)


def read_history(engine: sa.Engine, table: str, levels: tuple[str, ...] | None = None,
                 columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Rows of ``table`` across every complete release (for trends), optionally restricted
    to some levels and columns; ordered by release then primary key."""
    if table not in RELEASE_TABLES:
        raise ValueError(f"unknown published table {table!r}")
    t = RELEASE_TABLES[table]
    insp = sa.inspect(engine)
    if not insp.has_table(table):
        return _typed(pd.DataFrame(), t)
    have = {c["name"] for c in insp.get_columns(table)}
    wanted = [c for c in t.columns if c.name in have and (columns is None or c.name in columns or c.primary_key)]
    query = (sa.select(*wanted).join(releases, releases.c.release_id == t.c.release_id)
             .where(releases.c.status == "complete").order_by(*t.primary_key.columns))
    if levels is not None and "level" in t.c:
        query = query.where(t.c.level.in_(list(levels)))
    with engine.connect() as conn:
        df = pd.read_sql(query, conn)
    typed = _typed(df, t)
    return typed[[c.name for c in wanted]].reset_index(drop=True)
