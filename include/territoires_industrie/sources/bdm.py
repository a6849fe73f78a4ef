"""INSEE BDM (SDMX 2.1 web service): localised unemployment rates by département and région,
dataflow ``TAUX-CHOMAGE`` (115 series: FM, France hors Mayotte, 13 metro régions, 96 metro
départements incl. 2A/2B, 971-974).

``GET {TI_URL_BDM}/data/SERIES_BDM/{idbank1}+{idbank2}+...`` (at most 400 idbanks per call, as
pynsee does) returns SDMX-ML 2.1 *StructureSpecificData*:
``<Series IDBANK REF_AREA LAST_UPDATE ...><Obs TIME_PERIOD="2026-Q1" OBS_VALUE OBS_STATUS OBS_QUAL/>``.
The idbank list is the bundled real file ``data/real/chomage/bdm_taux_chomage_localise_idbanks.csv``.
The batch's as-of is the latest ``TIME_PERIOD`` in the data; ``OBS_STATUS="SD"`` marks the
provisional last quarter (revised at the next release).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from ..http import UpstreamFormatError

log = logging.getLogger(__name__)

IDBANK_FILE = Path(__file__).resolve().parents[1] / "data" / "real" / "chomage" / "bdm_taux_chomage_localise_idbanks.csv"
CHUNK = 400
SERIES_ATTRS = ("IDBANK", "REF_AREA", "FREQ", "LAST_UPDATE", "UNIT_MEASURE", "TITLE_FR")
OBS_ATTRS = ("TIME_PERIOD", "OBS_VALUE", "OBS_STATUS", "OBS_QUAL", "OBS_TYPE")


def load_idbanks(path: Path = IDBANK_FILE) -> pd.DataFrame:
    """idbank (9 chars, string), ref_area, niveau, code_insee, libelle."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"idbank", "ref_area", "niveau", "code_insee"} - set(df.columns)
    if missing:
        raise UpstreamFormatError(f"{Path(path).name}: missing column(s) {sorted(missing)}")
    df["idbank"] = df["idbank"].str.strip().str.zfill(9)
    return df


def series_url(client, idbanks: list[str]) -> str:
    return client.url("bdm", "data/SERIES_BDM/" + "+".join(idbanks))


def fetch_series(client, idbanks: list[str], out_dir: Path, chunk: int = CHUNK) -> list[tuple[Path, str]]:
    """One request per chunk of idbanks; each SDMX-ML response written to ``out_dir`` as it comes.
    Returns (path, url) per chunk."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(0, len(idbanks), chunk):
        part = idbanks[i:i + chunk]
        url = series_url(client, part)
        _, body, headers = client.get_bytes(url, headers={"Accept": "application/xml"})
        p = out_dir / f"taux_chomage_bdm_part{i // chunk + 1:02d}.xml"
        from ..storage import atomic_path

        with atomic_path(p) as tmp:
            tmp.write_bytes(body)
        check_sdmx(p)
        paths.append((p, url))
        log.info("BDM TAUX-CHOMAGE: chunk %d (%d idbanks) -> %s (%d bytes)", i // chunk + 1, len(part), p.name, len(body))
    return paths


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def check_sdmx(path: Path) -> None:
    """The response is an SDMX-ML StructureSpecificData message (not an HTML page, not an SDMX error)."""
    path = Path(path)
    head = path.read_bytes()[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise UpstreamFormatError(f"{path.name}: received an HTML page instead of SDMX-ML")
    try:
        for _, el in ET.iterparse(path, events=("start",)):
            root = _local(el.tag)
            break
        else:  # pragma: no cover
            raise UpstreamFormatError(f"{path.name}: empty XML document")
    except ET.ParseError as exc:
        raise UpstreamFormatError(f"{path.name}: malformed XML ({exc})") from exc
    if root == "Error":
        text = " ".join(t.strip() for t in ET.parse(path).getroot().itertext() if t.strip())
        raise UpstreamFormatError(f"{path.name}: SDMX error message from BDM: {text[:300]}")
    if root != "StructureSpecificData":
        raise UpstreamFormatError(f"{path.name}: expected an SDMX-ML StructureSpecificData message, got <{root}>")


def parse_sdmx(paths: list[Path], idbanks: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Stream Series/Obs into a long table: idbank, ref_area, niveau, code_insee, time_period
    ('2026-Q1'), quarter ('2026-T1'), rate, obs_status, obs_qual, last_update."""
    rows = []
    files = []
    for path in paths:
        path = Path(path)
        check_sdmx(path)
        files.append(path.name)
        series: dict = {}
        try:
            for event, el in ET.iterparse(path, events=("start", "end")):
                name = _local(el.tag)
                if event == "start" and name == "Series":
                    series = {a: el.attrib.get(a) for a in SERIES_ATTRS}
                    if not series["IDBANK"]:
                        raise UpstreamFormatError(f"{path.name}: a <Series> without IDBANK")
                elif event == "end" and name == "Obs":
                    if "TIME_PERIOD" not in el.attrib:
                        raise UpstreamFormatError(f"{path.name}: <Obs> without TIME_PERIOD in series {series.get('IDBANK')}")
                    rows.append((series["IDBANK"], series["REF_AREA"], series["LAST_UPDATE"],
                                 *(el.attrib.get(a) for a in OBS_ATTRS)))
                    el.clear()
                elif event == "end" and name == "Series":
                    el.clear()
        except ET.ParseError as exc:
            raise UpstreamFormatError(f"{path.name}: malformed XML ({exc})") from exc
    df = pd.DataFrame(rows, columns=["idbank", "ref_area", "last_update", "time_period", "obs_value", "obs_status",
                                     "obs_qual", "obs_type"])
    if df.empty:
        raise UpstreamFormatError(f"{', '.join(files)}: no <Series>/<Obs> in the SDMX response")
    df["rate"] = pd.to_numeric(df["obs_value"], errors="coerce")
    bad = df["rate"].isna() & df["obs_value"].notna() & (df["obs_value"] != "NaN")
    if bad.any():
        r = df[bad].iloc[0]
        raise UpstreamFormatError(f"{files[0]}: non-numeric OBS_VALUE {r['obs_value']!r} (series {r['idbank']}, "
                                  f"{r['time_period']})")
    df["quarter"] = df["time_period"].str.replace(r"^(\d{4})-Q([1-4])$", r"\1-T\2", regex=True)
    report = {"files": files, "series": int(df["idbank"].nunique()), "observations": int(len(df))}
    if idbanks is not None:
        df = df.merge(idbanks[["idbank", "niveau", "code_insee"]], on="idbank", how="left")
        expected = set(idbanks["idbank"])
        got = set(df["idbank"])
        report["missing_idbanks"] = sorted(expected - got)
        report["unexpected_idbanks"] = sorted(got - expected)
        if report["missing_idbanks"]:
            log.warning("BDM: %d requested idbank(s) absent from the response: %s", len(report["missing_idbanks"]),
                        report["missing_idbanks"][:20])
    latest = df.dropna(subset=["rate"])["time_period"].max()
    report["latest_time_period"] = latest
    report["provisional_latest"] = int(((df["time_period"] == latest) & (df["obs_status"] == "SD")).sum())
    df = df.drop(columns=["obs_value"]).sort_values(["idbank", "time_period"]).reset_index(drop=True)
    return df, report


def acquire_taux_chomage(client, settings, chunk: int = CHUNK):
    """Fetch all TAUX-CHOMAGE idbanks and land the SDMX-ML responses in
    ``raw/chomage_bdm/<latest TIME_PERIOD>/``. Identical responses -> ``changed=False``."""
    import shutil

    from ..landing import land_generated, work_dir

    ids = load_idbanks()
    work = work_dir(settings, "chomage_bdm", "taux_chomage")
    for old in work.glob("*.xml"):
        old.unlink()
    try:
        fetched = fetch_series(client, ids["idbank"].tolist(), work, chunk=chunk)
        paths = [p for p, _ in fetched]
        df, report = parse_sdmx(paths, ids)
        vintage = report["latest_time_period"]
        entries = {p.name: {"url": url, "rows": int(len(df)) if len(paths) == 1 else None,
                            "vintage_basis": "latest SDMX TIME_PERIOD", "report": report}
                   for p, url in fetched}
        return land_generated(settings, source="chomage_bdm", files=[(p, p.name) for p in paths], vintage=vintage,
                              entries=entries, state_key="taux_chomage", upstream=None, primary=paths[0].name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
