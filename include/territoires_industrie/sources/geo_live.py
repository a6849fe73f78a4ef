"""Geography files of one COG vintage, fetched from insee.fr (``TI_URL_INSEE_FILES``):

| key | file (vintage Y) | content used |
|---|---|---|
| ``geo_epci`` | ``fichier/2510634/epci_au_01-01-Y.zip`` (≤ 2023: ``Intercommunalite_Metropole_au_01-01-Y.zip``) | sheets EPCI, Composition_communale |
| ``geo_ze`` | ``fichier/4652957/ZE2020_au_01-01-Y.zip`` | sheets ZE2020, Composition_communale |
| ``geo_appartenance`` | ``fichier/7671844/table-appartenance-geo-communes-Y.zip`` (≤ 2023: ``-YY.zip``) | sheets COM (commune -> EPCI, ZE2020, DEP, REG) and ARM (arrondissement -> commune) |
| ``geo_passage`` | ``fichier/7671867/table_passage_geo2003_geoY.zip`` [?] page id for Y ≠ 2025 | sheet "Table de passage" (CODGEO_INI -> CODGEO_Y) |
| ``geo_cog`` | ``fichier/<page>/v_commune_Y.csv`` (pages: 2025 8377162; 2024 7766585 [?]; 2023 6800675 [?]) | TYPECOM, COM, DEP, REG, COMPARENT |
| ``geo_admin_express`` | IGN ADMIN EXPRESS COG CARTO (WGS84G, 7z) of COG Y, see :mod:`.admin_express` | layers EPCI, COMMUNE (report map) |

The year is ``TI_COG_YEAR`` (default 2023: the vintage of the Territoires d'industrie 2023-2027
list). Any file's path can be overridden with ``TI_GEO_URL_<KEY>`` (e.g. ``TI_GEO_URL_GEO_PASSAGE``;
an absolute URL or a path under ``TI_URL_INSEE_FILES``). The vintage of every file is the year
in its name ("géographie au 01/01/Y"). xlsx sheets are read by *name*, header rows found by
column name (INSEE puts the machine header on row 6).
"""

from __future__ import annotations

import logging
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

from .. import codes
from ..config import cog_year
from ..config import env as setting
from ..geography import FORCED_PASSAGE, SourceFormatError, read_epci, read_insee_sheet, read_ze

log = logging.getLogger(__name__)

COG_PAGES = {2023: "6800675", 2024: "7766585", 2025: "8377162"}
PASSAGE_SHEET = "Table de passage"


def file_path(key: str, year: int) -> tuple[str, str]:
    """(path under insee.fr, file name) of a geography file."""
    y = int(year)
    if key == "geo_epci":
        name = f"Intercommunalite_Metropole_au_01-01-{y}.zip" if y <= 2023 else f"epci_au_01-01-{y}.zip"
        return f"fr/statistiques/fichier/2510634/{name}", name
    if key == "geo_ze":
        name = f"ZE2020_au_01-01-{y}.zip"
        return f"fr/statistiques/fichier/4652957/{name}", name
    if key == "geo_appartenance":
        name = f"table-appartenance-geo-communes-{y % 100:02d}.zip" if y <= 2023 else f"table-appartenance-geo-communes-{y}.zip"
        folder = "2028028" if y <= 2022 else "7671844"
        return f"fr/statistiques/fichier/{folder}/{name}", name
    if key == "geo_passage":
        name = f"table_passage_geo2003_geo{y}.zip"
        return f"fr/statistiques/fichier/7671867/{name}", name
    if key == "geo_cog":
        name = f"v_commune_{y}.csv"
        page = COG_PAGES.get(y)
        if page is None:
            raise KeyError(f"COG {y}: page id unknown; set TI_GEO_URL_GEO_COG to the v_commune_{y}.csv URL")
        return f"fr/statistiques/fichier/{page}/{name}", name
    raise KeyError(f"unknown geography file {key!r}")


def file_url(client, key: str, year: int, env: dict | None = None) -> tuple[str, str]:
    override = setting(f"TI_GEO_URL_{key.upper()}", env)
    if override:
        name = override.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
        return (override if override.startswith(("http://", "https://")) else client.url("insee_files", override)), name
    path, name = file_path(key, year)
    return client.url("insee_files", path), name


def extract_xlsx(zip_path: Path, dest_dir: Path, hint: str | None = None) -> Path:
    """Extract the (single, or matching ``hint``) xlsx member of an INSEE zip; returns its path."""
    zip_path = Path(zip_path)
    with zipfile.ZipFile(zip_path) as zf:
        members = [n for n in zf.namelist() if n.lower().endswith(".xlsx")]
        if hint:
            members = [n for n in members if hint.lower() in n.lower()] or members
        if len(members) != 1:
            raise SourceFormatError(f"{zip_path.name}: expected one .xlsx member{f' like {hint!r}' if hint else ''}, "
                                    f"found {zf.namelist()}")
        out = Path(dest_dir) / Path(members[0]).name
        with zf.open(members[0]) as src, open(out, "wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
    return out


def read_passage_table(path: Path, year: int) -> pd.DataFrame:
    """Sheet "Table de passage": every commune code since 2003 -> its code in COG ``year``.

    Returns ``codgeo_ini, codgeo`` (strings, 5 chars), plus the forced Saint-Barthélemy /
    Saint-Martin rows. A code with several targets is a split (scission), kept as several rows."""
    target = f"CODGEO_{int(year)}"
    df = read_insee_sheet(Path(path), PASSAGE_SHEET, ["CODGEO_INI", target])
    out = pd.DataFrame({"codgeo_ini": codes.normalise_commune(df["CODGEO_INI"]),
                        "codgeo": codes.normalise_commune(df[target])}).dropna()
    forced = pd.DataFrame({"codgeo_ini": list(FORCED_PASSAGE), "codgeo": list(FORCED_PASSAGE.values())})
    out = pd.concat([out[~out["codgeo_ini"].isin(FORCED_PASSAGE)], forced], ignore_index=True)
    out = out.astype("str").drop_duplicates().sort_values(["codgeo_ini", "codgeo"]).reset_index(drop=True)
    log.info("%s: %d passage rows (%d distinct old codes) towards COG %s", Path(path).name, len(out),
             out["codgeo_ini"].nunique(), year)
    return out


def read_appartenance(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sheets COM (codgeo, libgeo, dep, reg, epci, ze2020) and ARM (codgeo of the arrondissement, com)."""
    com = read_insee_sheet(Path(path), "COM", ["CODGEO", "LIBGEO", "DEP", "REG", "EPCI", "ZE2020"])
    com = com[["CODGEO", "LIBGEO", "DEP", "REG", "EPCI", "ZE2020"]].rename(columns=str.lower)
    com["codgeo"] = codes.normalise_commune(com["codgeo"])
    com["ze2020"] = codes.pad(com["ze2020"], 4)
    com["dep"] = codes.pad(com["dep"], 2)
    com["reg"] = codes.pad(com["reg"], 2)
    arm = read_insee_sheet(Path(path), "ARM", ["CODGEO", "COM"])
    arm = arm[["CODGEO", "COM"]].rename(columns={"CODGEO": "codgeo_arm", "COM": "codgeo"})
    arm["codgeo_arm"] = codes.normalise_commune(arm["codgeo_arm"])
    arm["codgeo"] = codes.normalise_commune(arm["codgeo"])
    return com.reset_index(drop=True), arm.reset_index(drop=True)


def _decode_insee_csv(path: Path) -> str:
    """Text of an INSEE CSV: UTF-8 (with or without BOM), else Windows-1252 (files re-saved by a
    spreadsheet), decoded exactly and logged; anything else is refused naming the file."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise SourceFormatError(f"{path.name}: neither UTF-8 nor Windows-1252 (byte {exc.start}: "
                                    f"{data[exc.start:exc.start + 4]!r}); re-export it as UTF-8") from None
        log.warning("%s: not UTF-8 (byte %d); decoded as Windows-1252", path.name, exc.start)
        return text


def read_cog_communes(path: Path) -> pd.DataFrame:
    """``v_commune_Y.csv``: typecom, com, dep, reg, libelle, comparent (upper- or lower-case headers).

    Repaired exactly, or refused naming the file and line: a Windows-1252 file is decoded as such;
    codes whose leading zero a spreadsheet stripped (``1001``, département ``1``) are padded, and
    every commune code must then start with its département code."""
    import io

    path = Path(path)
    df = pd.read_csv(io.StringIO(_decode_insee_csv(path)), dtype=str, keep_default_na=False, sep=None,
                     engine="python")
    df.columns = [c.strip().upper() for c in df.columns]
    missing = [c for c in ("TYPECOM", "COM", "DEP", "REG", "COMPARENT") if c not in df.columns]
    if missing:
        raise SourceFormatError(f"{path.name}: required column(s) {missing} missing (found {list(df.columns)[:12]})")
    out = df[["TYPECOM", "COM", "DEP", "REG", "COMPARENT"] + (["LIBELLE"] if "LIBELLE" in df.columns else [])]
    out = out.rename(columns=str.lower)
    out["com"] = codes.normalise_commune(out["com"])
    out["dep"] = codes.pad(out["dep"], 2).astype("str")
    out["reg"] = codes.pad(out["reg"], 2).astype("str")
    com_rows = (out["typecom"] == "COM") & (out["dep"] != "")
    bad = com_rows & ~pd.Series([c.startswith(d) for c, d in zip(out["com"], out["dep"])], index=out.index)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise SourceFormatError(f"{path.name}: line {i + 2}: commune {out['com'].iat[i]!r} is not in département "
                                f"{out['dep'].iat[i]!r} ({int(bad.sum())} such row(s)); the codes are damaged "
                                f"(leading zeros?), download the file again")
    return out.reset_index(drop=True)


def _validator(key: str, year: int):
    def check(path: Path) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            if key == "geo_cog":
                return int((read_cog_communes(path)["typecom"] == "COM").sum())
            x = extract_xlsx(path, Path(tmp), {"geo_passage": "passage_geo"}.get(key))
            if key == "geo_epci":
                return len(read_epci(x)[1])
            if key == "geo_ze":
                return len(read_ze(x)[1])
            if key == "geo_passage":
                return len(read_passage_table(x, year))
            if key == "geo_appartenance":
                return len(read_appartenance(x)[0])
        raise KeyError(key)  # pragma: no cover

    return check


def acquire(client, settings, key: str, year: int | None = None, **_):
    """Land one geography file in ``raw/<key>/<year>/`` after checking its sheets/columns by name."""
    from ..landing import land_download

    if key == "geo_admin_express":
        from . import admin_express

        return admin_express.acquire(client, settings, year)
    y = int(year or cog_year())
    url, name = file_url(client, key, y)
    return land_download(client, settings, source=key, file_name=name, url=url, vintage=str(y),
                         expect="csv" if key == "geo_cog" else "zip", validate=_validator(key, y),
                         extra={"vintage_basis": f"géographie au 01/01/{y} (file name)"})
