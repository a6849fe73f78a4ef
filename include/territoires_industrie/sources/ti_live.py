"""Territoires d'industrie 2023-2027 perimeters (ANCT), from the data.gouv dataset
"Programme Territoires d'industrie" (``programme-territoires-dindustrie``):

- ``liste-ti-com2023-{YYYYMMDD}.csv``: insee_com, lib_com, id_ti, lib_ti (communes, COG 2023);
- ``liste-ti-grpt2023-{YYYYMMDD}.csv``: id_ti, siren_groupement, lib_groupement, nature_juridique
  (signatory groupements: EPCI SIREN, EPT, communes).

The newest file of each kind is chosen by the date in its name (then ``last_modified``). Files
dated before the 2023-2027 laureates were announced (9/11/2023) are the phase-1 list
republished in COG 2023 and are not taken. The vintage is the resource's ``last_modified``
date; the date in the file name is recorded in the manifest.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from ..geography import SourceFormatError
from . import datagouv

log = logging.getLogger(__name__)

KINDS = {
    "com": ("liste-ti-com2023", ["insee_com", "id_ti", "lib_ti"]),
    "grpt": ("liste-ti-grpt2023", ["id_ti", "siren_groupement", "nature_juridique"]),
}
PHASE2_FIRST_DATE = "20231109"


def _file_date(res: datagouv.Resource, prefix: str) -> str | None:
    for text in (res.title, res.url.rsplit("/", 1)[-1]):
        m = re.search(re.escape(prefix) + r"-(\d{8})\.csv", text)
        if m:
            return m.group(1)
    return None


def newest(data: dict, kind: str) -> tuple[datagouv.Resource, str]:
    prefix, _ = KINDS[kind]
    found = [(r, _file_date(r, prefix)) for r in datagouv.find_resources(data, re.escape(prefix) + r"-\d{8}\.csv")]
    found = [(r, d) for r, d in found if d and d >= PHASE2_FIRST_DATE]
    if not found:
        raise datagouv.ResourceNotFound(f"data.gouv {datagouv.TI_DATASET}: no {prefix}-YYYYMMDD.csv dated on or "
                                        f"after {PHASE2_FIRST_DATE}")
    return max(found, key=lambda x: (x[1], x[0].last_modified))


def read_grpt(path: Path) -> pd.DataFrame:
    """Groupements: id_ti, siren_groupement (9 chars), lib_groupement, nature_juridique."""
    path = Path(path)
    df = pd.read_csv(path, dtype=str, sep=None, engine="python", encoding="utf-8-sig", keep_default_na=False)
    missing = [c for c in KINDS["grpt"][1] if c not in df.columns]
    if missing:
        raise SourceFormatError(f"{path.name}: required column(s) {missing} missing (found {list(df.columns)})")
    df["siren_groupement"] = df["siren_groupement"].str.strip().str.zfill(9)
    cols = [c for c in ("id_ti", "siren_groupement", "lib_groupement", "nature_juridique") if c in df.columns]
    return df[cols].reset_index(drop=True)


def _validator(kind: str):
    def check(path: Path) -> int:
        df = pd.read_csv(path, dtype=str, sep=None, engine="python", encoding="utf-8-sig", keep_default_na=False)
        missing = [c for c in KINDS[kind][1] if c not in df.columns]
        if missing:
            raise SourceFormatError(f"{Path(path).name}: required column(s) {missing} missing "
                                    f"(found {list(df.columns)})")
        if df.empty:
            raise SourceFormatError(f"{Path(path).name}: header only, no data rows")
        return len(df)

    return check


def acquire(client, settings, kind: str):
    from ..landing import land_download

    data = datagouv.get_dataset(client, datagouv.TI_DATASET)
    res, file_date = newest(data, kind)
    source = "ti_2023" if kind == "com" else "ti_2023_grpt"
    name = f"{KINDS[kind][0]}-{file_date}.csv"
    return land_download(client, settings, source=source, file_name=name, url=res.url, vintage=res.vintage,
                         upstream=res.marker, expected_size=res.filesize, checksum=res.checksum, expect="csv",
                         validate=_validator(kind), extra={"title": res.title, "file_date": file_date,
                                                           "vintage_basis": "data.gouv last_modified"})
