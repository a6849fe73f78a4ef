"""Settings, read from environment variables (and, inside Airflow, connections).

One code path everywhere: the embedded default, a team server and Kubernetes all read
the same names. Nothing is read at import time; call :func:`get_settings`.

Every ``TI_*`` variable is declared once in :data:`VARIABLES` (name, default, meaning) and read
through :func:`env` here only (``tests/unit/test_config.py`` checks that no other module reads a
``TI_*`` variable, and that the README's table is :func:`markdown_table`). The DAG files read
``TI_TASK_RETRIES`` themselves (they must not import the library at parse time); it is declared
here too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SOURCE_MODES = ("sample", "live")


@dataclass(frozen=True)
class Variable:
    name: str            # full name, or a prefix ending with "_*" (a family: TI_URL_*, TI_HTTP_*...)
    default: str | None  # as written in the environment; None: unset
    doc: str
    shown: str | None = None  # the default as shown to a reader, when not a literal value


VARIABLES: tuple[Variable, ...] = (
    Variable("TI_DATA_DIR", None, "root of sample inputs, raw zone, staging, exports, reports, validation", "`./var`"),
    Variable("TI_WAREHOUSE_URL", None, "SQLAlchemy URL of the warehouse", "`sqlite:///$TI_DATA_DIR/warehouse.db`"),
    Variable("TI_SOURCE_MODE", "sample", "`sample` (bundled/generated files) or `live` (official endpoints)"),
    Variable("TI_SAMPLE_DEPARTEMENTS", None, "départements of the synthetic sample", "BFC + Corsica"),
    Variable("TI_SAMPLE_SCALE", "1.0", "size factor of the synthetic sample"),
    Variable("TI_INSEE_API_KEY", None, "INSEE API key (or the Airflow connection `insee_api`, password field) — how to "
             "get one: [docs/sources.md](docs/sources.md)"),
    Variable("TI_URL_*", None, "override an endpoint (`TI_URL_DATAGOUV`, `_INSEE_API`, `_INSEE_FILES`, `_BDM`, "
             "`_MELODI`, `_URSSAF`, `_GEOPF`, `_ADMIN_EXPRESS`); tests point them at a local replay server",
             "official endpoints"),
    Variable("TI_GEO_URL_*", None, "override the URL of one geography file (`TI_GEO_URL_GEO_EPCI`...)", "by COG year"),
    Variable("TI_COG_YEAR", "2023", "COG vintage of the live geography"),
    Variable("TI_CENSUS_YEAR", None, "force the census (RP) year fetched from Melodi (checked against what it holds)",
             "latest held (Melodi `range`)"),
    Variable("TI_CENSUS_BASE_YEAR", None, "force the census base year", "previous year held"),
    Variable("TI_SIRENE_FORMAT", "zip", "`parquet` prefers the official Parquet twin of the SIRENE stock"),
    Variable("TI_FETCH_GEOMETRY", "1", "`0`: live geography skips the IGN ADMIN EXPRESS map geometries "
             "([docs/sources.md](docs/sources.md))"),
    Variable("TI_ADMIN_EXPRESS_EDITION", None, "ADMIN EXPRESS edition for a COG year missing from the table",
             "by COG year"),
    Variable("TI_HTTP_*", None, "HTTP client: `_CONNECT_TIMEOUT` 10 s, `_READ_TIMEOUT` 120 s, `_MAX_RETRIES` 6, "
             "`_BACKOFF_BASE` 2 s, `_BACKOFF_CAP` 120 s, `_RETRY_AFTER_CAP` 300 s, `_BUDGET` 1800 s, "
             "`_RATE_INSEE` `30/60`, `_PROGRESS_EVERY` 10 s", "see meaning"),
    Variable("TI_URSSAF_YEARS", "11", "URSSAF years staged (t1-10..t1, plus 2019); `0` = every year of the file"),
    Variable("TI_MC_DRAWS", "1000", "Monte Carlo draws of the composite's uncertainty"),
    Variable("TI_MC_SEED", "20231109", "Monte Carlo seed (one seed: same inputs, same intervals)"),
    Variable("TI_WEIGHTS", None, "domain weights of the composite", "`A=35,B=25,C=30,D=10`"),
    Variable("TI_VALIDATION_DRIFT_PCT", "10", "soft gate: drift of a column's mean vs the previous vintage (%)"),
    Variable("TI_VALIDATION_ROWCOUNT_PCT", "10", "soft gate: change of the row count vs the previous vintage (%)"),
    Variable("TI_VALIDATION_MAX_UNKNOWN_COMMUNE_PCT", "1", "hard gate: share of rows on unknown communes (%)"),
    Variable("TI_VALIDATION_QUARANTINE_CAP", "100000", "most rows quarantined per batch"),
    Variable("TI_GX_LOG_LEVEL", "WARNING", "log level of Great Expectations' own loggers"),
    Variable("TI_MALLOC_MMAP_THRESHOLD", "131072", "glibc mmap threshold fixed in every stage (bytes; `0`: glibc's "
             "dynamic default, which held ~0.5 GB more at national scale)"),
    Variable("TI_GEOMETRY_DIR", None, "GeoJSON for the report maps", "staging geography"),
    Variable("TI_NOTIFY_SMTP_URL", None, "notifications by e-mail outside Airflow (in Airflow: connection "
             "`ti_notify_smtp`)"),
    Variable("TI_NOTIFY_WEBHOOK_URL", None, "notifications by webhook outside Airflow (in Airflow: connection "
             "`ti_notify_webhook`)"),
    Variable("TI_TASK_RETRIES", "1", "task retries (`0` in `make run` and the tests)"),
)
_BY_NAME = {v.name: v for v in VARIABLES}
_PREFIXES = tuple(v.name[:-1] for v in VARIABLES if v.name.endswith("_*"))


def declared(name: str) -> Variable:
    """The declaration of ``name`` (a family's for ``TI_URL_MELODI``...); KeyError if undeclared."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    for p in _PREFIXES:
        if name.startswith(p):
            return _BY_NAME[p + "*"]
    raise KeyError(f"{name} is not declared in config.VARIABLES")


def env(name: str, environ=None) -> str | None:
    """The value of the declared variable ``name`` (stripped), else its declared default."""
    var = declared(name)
    environ = os.environ if environ is None else environ
    raw = environ.get(name)
    if raw is not None and str(raw).strip() != "":
        return str(raw).strip()
    return var.default if var.name == name else None


def markdown_table() -> str:
    """The README's configuration table, from the declarations."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for v in VARIABLES:
        default = v.shown or (f"`{v.default}`" if v.default is not None else "—")
        rows.append(f"| `{v.name}` | {default} | {v.doc} |")
    return "\n".join(rows)
DEFAULT_SAMPLE_DEPARTEMENTS = ("21", "25", "39", "58", "70", "71", "89", "90", "2A", "2B")  # two whole régions: BFC + Corse


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    warehouse_url: str
    source_mode: str = "sample"
    sample_departements: tuple[str, ...] = DEFAULT_SAMPLE_DEPARTEMENTS
    sample_scale: float = 1.0
    user_agent: str = "territoires-industrie-indicators/0.1 (+ANCT/DGE data platform)"
    extra: dict = field(default_factory=dict)

    @property
    def sample_dir(self) -> Path:
        return self.data_dir / "sample"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "staging"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def validation_dir(self) -> Path:
        return self.data_dir / "validation"

    @property
    def is_synthetic(self) -> bool:
        """Sample mode feeds generated (synthetic) SIRENE/URSSAF/unemployment/census files."""
        return self.source_mode == "sample"


def get_settings(environ: dict | None = None) -> Settings:
    data_dir = Path(env("TI_DATA_DIR", environ) or Path.cwd() / "var").resolve()
    url = env("TI_WAREHOUSE_URL", environ) or f"sqlite:///{data_dir / 'warehouse.db'}"
    mode = env("TI_SOURCE_MODE", environ).lower()
    if mode not in SOURCE_MODES:
        raise ValueError(f"TI_SOURCE_MODE={mode!r} is not one of {SOURCE_MODES}")
    deps_raw = env("TI_SAMPLE_DEPARTEMENTS", environ)
    deps = tuple(d.strip().upper() for d in deps_raw.split(",") if d.strip()) if deps_raw else DEFAULT_SAMPLE_DEPARTEMENTS
    scale = float(env("TI_SAMPLE_SCALE", environ))
    return Settings(data_dir=data_dir, warehouse_url=url, source_mode=mode, sample_departements=deps, sample_scale=scale)


def insee_api_key(environ: dict | None = None) -> str | None:
    """The INSEE portal key: env var first, then the Airflow connection ``insee_api`` (password).

    Only called inside tasks at run time, never at DAG parse time. The value is never logged.
    """
    key = env("TI_INSEE_API_KEY", environ)
    if key:
        return key
    try:  # pragma: no cover - only inside Airflow
        from airflow.sdk import BaseHook  # type: ignore

        return BaseHook.get_connection("insee_api").password or None
    except Exception:
        return None


DEFAULT_COG_YEAR = int(_BY_NAME["TI_COG_YEAR"].default)  # the COG of the 2023-2027 Territoires d'industrie list


def cog_year(environ: dict | None = None) -> int:
    """``TI_COG_YEAR``: the geography vintage fetched in live mode."""
    return int(env("TI_COG_YEAR", environ))


if __name__ == "__main__":  # prints the README's configuration table
    print(markdown_table())
