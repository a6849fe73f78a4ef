"""Settings, read from environment variables (and, inside Airflow, connections).

One code path everywhere: the embedded default, a team server and Kubernetes all read
the same names. Nothing is read at import time; call :func:`get_settings`.

| variable | default | meaning |
|---|---|---|
| ``TI_DATA_DIR`` | ``./var`` | root of sample inputs, raw landing zone, staging, exports, reports |
| ``TI_WAREHOUSE_URL`` | ``sqlite:///<TI_DATA_DIR>/warehouse.db`` | SQLAlchemy URL of the warehouse |
| ``TI_SOURCE_MODE`` | ``sample`` | ``sample`` (bundled / generated files) or ``live`` (official endpoints) |
| ``TI_SAMPLE_SCALE`` | ``1.0`` | size factor of the synthetic sample (tests use a small one) |
| ``TI_INSEE_API_KEY`` | – | INSEE portal key for API Sirene (or Airflow connection ``insee_api``) |
| ``TI_SAMPLE_DEPARTEMENTS`` | the 8 of Bourgogne-Franche-Comté + 2A, 2B | départements covered by the synthetic sample |
| ``TI_URL_DATAGOUV`` | ``https://www.data.gouv.fr/api/1`` | data.gouv dataset API (SIRENE stock, TI lists) |
| ``TI_URL_INSEE_API`` | ``https://api.insee.fr/api-sirene/3.11`` | API Sirene |
| ``TI_URL_INSEE_FILES`` | ``https://www.insee.fr`` | insee.fr files (COG, EPCI, ZE, passage, unemployment xlsx) |
| ``TI_URL_BDM`` | ``https://bdm.insee.fr/series/sdmx`` | BDM SDMX web service |
| ``TI_URL_MELODI`` | ``https://api.insee.fr/melodi`` | Melodi API (census) |
| ``TI_URL_URSSAF`` | ``https://open.urssaf.fr/api/explore/v2.1`` | open.urssaf.fr (Opendatasoft) API |
| ``TI_URL_GEOPF`` | ``https://data.geopf.fr/telechargement/download`` | IGN Géoplateforme downloads (ADMIN EXPRESS COG CARTO) |
| ``TI_URL_ADMIN_EXPRESS`` | – | full URL of the ADMIN EXPRESS COG CARTO ``.7z`` (replaces the one built from the COG year) |
| ``TI_ADMIN_EXPRESS_EDITION`` | by COG year (2023 ``2023-05-03``…) | ADMIN EXPRESS edition for a COG year missing from the table |
| ``TI_FETCH_GEOMETRY`` | ``1`` | ``0``: live geography does not fetch the map geometries (the report says the map is unavailable) |
| ``TI_HTTP_*`` | see ``http.py`` | timeouts, retries, backoff, Retry-After cap, retry budget, INSEE rate (``30/60``) |
| ``TI_SIRENE_FORMAT`` | ``zip`` | ``parquet`` prefers the official Parquet twin of the SIRENE stock |
| ``TI_COG_YEAR`` | ``2023`` | COG vintage of the live geography (``TI_GEO_URL_<KEY>`` overrides a file's URL) |
| ``TI_CENSUS_YEAR`` / ``TI_CENSUS_BASE_YEAR`` | latest / previous year held (Melodi ``range``) | force the census (RP) years fetched from Melodi (checked against what it holds) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SOURCE_MODES = ("sample", "live")
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


def get_settings(env: dict | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("TI_DATA_DIR") or Path.cwd() / "var").resolve()
    url = env.get("TI_WAREHOUSE_URL") or f"sqlite:///{data_dir / 'warehouse.db'}"
    mode = (env.get("TI_SOURCE_MODE") or "sample").strip().lower()
    if mode not in SOURCE_MODES:
        raise ValueError(f"TI_SOURCE_MODE={mode!r} is not one of {SOURCE_MODES}")
    deps_raw = env.get("TI_SAMPLE_DEPARTEMENTS")
    deps = tuple(d.strip().upper() for d in deps_raw.split(",") if d.strip()) if deps_raw else DEFAULT_SAMPLE_DEPARTEMENTS
    scale = float(env.get("TI_SAMPLE_SCALE") or 1.0)
    return Settings(data_dir=data_dir, warehouse_url=url, source_mode=mode, sample_departements=deps, sample_scale=scale)


def insee_api_key(env: dict | None = None) -> str | None:
    """The INSEE portal key: env var first, then the Airflow connection ``insee_api`` (password).

    Only called inside tasks at run time, never at DAG parse time. The value is never logged.
    """
    env = os.environ if env is None else env
    key = env.get("TI_INSEE_API_KEY")
    if key:
        return key
    try:  # pragma: no cover - only inside Airflow
        from airflow.sdk import BaseHook  # type: ignore

        return BaseHook.get_connection("insee_api").password or None
    except Exception:
        return None


DEFAULT_COG_YEAR = 2023  # the COG vintage of the 2023-2027 Territoires d'industrie list


def cog_year(env: dict | None = None) -> int:
    """``TI_COG_YEAR``: the geography vintage fetched in live mode."""
    env = os.environ if env is None else env
    return int(env.get("TI_COG_YEAR") or DEFAULT_COG_YEAR)
