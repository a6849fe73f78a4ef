"""Geography of one COG vintage: communes -> EPCI, zone d'emploi, département, région,
Territoires d'industrie.

Reads the official INSEE files by sheet and column *name* (machine header on row 6),
keeps codes as strings, and exposes a single commune table that every source is mapped
onto. Bundled files (real, INSEE, géographie au 01/01/2023) live in ``data/real/geo``.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import codes
from .errors import DataError

log = logging.getLogger(__name__)

REAL_DIR = Path(__file__).parent / "data" / "real"
EPCI_XLSX = REAL_DIR / "geo" / "Intercommunalite_Metropole_au_01-01-2023.xlsx"
ZE_XLSX = REAL_DIR / "geo" / "ZE2020_au_01-01-2023.xlsx"
TI_PHASE1_CSV = REAL_DIR / "territoires_industrie" / "ti_2018_2022_communes_signauxfaibles_202010.csv"
MERGES_CSV = REAL_DIR / "geo" / "communes_anciens_codes_2026.csv"
#: COG year of the merges table (package @etalab/decoupage-administratif 6.0.0, 2026)
MERGES_COG_YEAR = 2026
COG_VINTAGE = "2023"
NO_EPCI = "ZZZZZZZZZ"  # "Sans objet": 4 island communes without EPCI


class SourceFormatError(DataError, ValueError):
    """A source file does not have the expected layout; the message names file and field."""


def find_header_row(raw: pd.DataFrame, required: list[str], path: Path, sheet: str, max_rows: int = 15) -> int:
    """Locate the machine header row (INSEE puts it on row 6, but never trust a position)."""
    want = set(required)
    for i in range(min(max_rows, len(raw))):
        row = {str(v).strip() for v in raw.iloc[i].tolist() if pd.notna(v)}
        if want <= row:
            return i
    raise SourceFormatError(
        f"{path.name}, sheet {sheet!r}: no header row with columns {sorted(want)} in the first {max_rows} rows"
    )


def read_insee_sheet(path: Path, sheet: str, required: list[str]) -> pd.DataFrame:
    """Read one sheet of an INSEE xlsx by column name, every cell as text."""
    try:
        raw = pd.read_excel(path, sheet_name=sheet, header=None, dtype=str)
    except ValueError as exc:  # missing sheet
        raise SourceFormatError(f"{path.name}: sheet {sheet!r} not found ({exc})") from exc
    except (zipfile.BadZipFile, EOFError, KeyError) as exc:  # truncated / corrupt download (issue 9 corpus)
        raise SourceFormatError(f"{path.name}: not a readable xlsx file ({type(exc).__name__}: {exc}); "
                                "a truncated or corrupt download?") from exc
    h = find_header_row(raw, required, path, sheet)
    df = raw.iloc[h + 1 :].copy()
    df.columns = [str(c).strip() for c in raw.iloc[h].tolist()]
    df = df.dropna(how="all")
    return df.reset_index(drop=True)


@dataclass
class Geography:
    """One COG vintage. ``communes``: one row per commune (arrondissements excluded)."""

    vintage: str
    communes: pd.DataFrame  # codgeo, libgeo, epci, dep, reg, ze2020
    epci: pd.DataFrame  # epci, libepci, nature_epci, nb_com
    ze: pd.DataFrame  # ze2020, libze2020, nb_com
    ti: pd.DataFrame  # ti_id, ti_phase, ti_label, codgeo (one row per TI x commune)
    ti_unmapped: pd.DataFrame  # TI commune codes absent from the vintage (reported, not dropped)
    #: TI commune codes of another COG year translated to the vintage (ti_id, codgeo_ini, codgeo)
    ti_mapped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["ti_id", "codgeo_ini", "codgeo"]))

    def commune_codes(self) -> set[str]:
        return set(self.communes["codgeo"])

    def map_commune(self, series: pd.Series) -> pd.Series:
        """Normalise a commune code series onto this vintage (zeros restored, ARM -> COM)."""
        return codes.arm_to_commune(codes.normalise_commune(series))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("communes", "epci", "ze", "ti", "ti_unmapped", "ti_mapped"):
            getattr(self, name).to_parquet(folder / f"{name}.parquet", index=False)
        (folder / "VINTAGE").write_text(self.vintage)

    @classmethod
    def load(cls, folder: Path) -> "Geography":
        folder = Path(folder)
        parts = {n: pd.read_parquet(folder / f"{n}.parquet") for n in ("communes", "epci", "ze", "ti", "ti_unmapped")}
        if (folder / "ti_mapped.parquet").exists():  # absent from partitions staged before it existed
            parts["ti_mapped"] = pd.read_parquet(folder / "ti_mapped.parquet")
        return cls(vintage=(folder / "VINTAGE").read_text().strip(), **parts)


def read_epci(path: Path = EPCI_XLSX) -> tuple[pd.DataFrame, pd.DataFrame]:
    epci = read_insee_sheet(path, "EPCI", ["EPCI", "LIBEPCI", "NATURE_EPCI", "NB_COM"])
    comp = read_insee_sheet(path, "Composition_communale", ["CODGEO", "LIBGEO", "EPCI", "DEP", "REG"])
    epci = epci[["EPCI", "LIBEPCI", "NATURE_EPCI", "NB_COM"]].rename(columns=str.lower)
    epci["nb_com"] = pd.to_numeric(epci["nb_com"]).astype("int64")
    comp = comp[["CODGEO", "LIBGEO", "EPCI", "DEP", "REG"]].rename(columns=str.lower)
    comp["codgeo"] = codes.normalise_commune(comp["codgeo"])
    comp["dep"] = codes.pad(comp["dep"], 2)
    comp["reg"] = codes.pad(comp["reg"], 2)
    return epci, comp


def read_ze(path: Path = ZE_XLSX) -> tuple[pd.DataFrame, pd.DataFrame]:
    ze = read_insee_sheet(path, "ZE2020", ["ZE2020", "LIBZE2020", "NB_COM"])
    comp = read_insee_sheet(path, "Composition_communale", ["CODGEO", "ZE2020", "ZE2020_PARTIE_REG"])
    ze = ze[["ZE2020", "LIBZE2020", "NB_COM"]].rename(columns=str.lower)
    ze["ze2020"] = codes.pad(ze["ze2020"], 4)
    ze["nb_com"] = pd.to_numeric(ze["nb_com"]).astype("int64")
    comp = comp[["CODGEO", "ZE2020", "ZE2020_PARTIE_REG"]].rename(columns=str.lower)
    comp["codgeo"] = codes.normalise_commune(comp["codgeo"])
    comp["ze2020"] = codes.pad(comp["ze2020"], 4)
    return ze, comp


def read_ti_phase1(path: Path = TI_PHASE1_CSV) -> pd.DataFrame:
    """Phase-1 list (2018-2022), Signaux Faibles layout: code_commune, code_terrind, libelle_terrind."""
    df = pd.read_csv(path, dtype=str, encoding="utf-8")
    missing = {"code_commune", "code_terrind", "libelle_terrind"} - set(df.columns)
    if missing:
        raise SourceFormatError(f"{path.name}: missing column(s) {sorted(missing)}")
    return pd.DataFrame(
        {
            "ti_id": "TI1-" + codes.pad(df["code_terrind"], 4),
            "ti_phase": "2018-2022",
            "ti_label": df["libelle_terrind"].str.strip(),
            "codgeo": codes.normalise_commune(df["code_commune"]),
        }
    )


def read_ti_2023(path: Path) -> pd.DataFrame:
    """ANCT 2023-2027 list ``liste-ti-com2023-*.csv``: insee_com, lib_com, id_ti, lib_ti.

    A commune in two territories carries ``id_ti`` values separated by ``" ; "``.
    """
    df = pd.read_csv(path, dtype=str, sep=None, engine="python", encoding="utf-8-sig")
    missing = {"insee_com", "id_ti", "lib_ti"} - set(df.columns)
    if missing:
        raise SourceFormatError(f"{Path(path).name}: missing column(s) {sorted(missing)}")
    ids = df["id_ti"].str.split(r"\s*;\s*", regex=True)
    labels = df["lib_ti"].str.split(r"\s*;\s*", regex=True)
    rows = []
    for com, id_list, lab_list in zip(df["insee_com"], ids, labels):
        for k, ti in enumerate(id_list):
            lab = lab_list[k] if isinstance(lab_list, list) and k < len(lab_list) else lab_list[0]
            rows.append((ti.strip(), "2023-2027", lab.strip(), com))
    out = pd.DataFrame(rows, columns=["ti_id", "ti_phase", "ti_label", "codgeo"])
    out["codgeo"] = codes.normalise_commune(out["codgeo"])
    return out


def build_geography(
    epci_path: Path = EPCI_XLSX,
    ze_path: Path = ZE_XLSX,
    ti_paths: list[tuple[str, Path]] | None = None,
    vintage: str = COG_VINTAGE,
    passage: pd.DataFrame | None = None,
) -> Geography:
    """Join the EPCI and ZE compositions into one commune table and attach TI perimeters.

    ``passage`` (``codgeo_ini, codgeo``; see :func:`map_to_vintage`): old commune codes of the TI
    lists are translated to this vintage; codes it cannot map stay reported in ``ti_unmapped``."""
    epci, comp_epci = read_epci(epci_path)
    ze, comp_ze = read_ze(ze_path)
    communes = comp_epci.merge(comp_ze, on="codgeo", how="outer", indicator=True)
    bad = communes[communes["_merge"] != "both"]
    if len(bad):
        raise SourceFormatError(
            f"{epci_path.name} / {ze_path.name}: {len(bad)} commune(s) not in both compositions, "
            f"e.g. {bad['codgeo'].head(5).tolist()}"
        )
    communes = communes.drop(columns="_merge")
    communes = communes.merge(ze[["ze2020", "libze2020"]], on="ze2020", how="left")
    communes = communes.merge(epci[["epci", "libepci", "nature_epci"]], on="epci", how="left")
    communes = communes.sort_values("codgeo").reset_index(drop=True)

    ti_frames = [read_ti_phase1()] if ti_paths is None else [
        read_ti_phase1(p) if phase == "2018-2022" else read_ti_2023(p) for phase, p in ti_paths
    ]
    ti = pd.concat(ti_frames, ignore_index=True)
    ti["codgeo"] = codes.arm_to_commune(ti["codgeo"])
    known = set(communes["codgeo"])
    mapped = pd.DataFrame(columns=["ti_id", "codgeo_ini", "codgeo"])
    if passage is not None and len(passage):
        before = ti["codgeo"].copy()
        ti["codgeo"], rep = map_to_vintage(ti["codgeo"], passage, known)
        moved = before != ti["codgeo"]
        mapped = pd.DataFrame({"ti_id": ti.loc[moved, "ti_id"], "codgeo_ini": before[moved],
                               "codgeo": ti.loc[moved, "codgeo"]}).reset_index(drop=True)
        log.info("TI perimeters: %d commune code(s) of another COG mapped to COG %s (%d newer), %d split, %d unmappable",
                 len(rep["mapped"]) + len(rep["newer"]), vintage, len(rep["newer"]), len(rep["split"]),
                 rep["unmappable_count"])
    unmapped = ti[~ti["codgeo"].isin(known)].reset_index(drop=True)
    if len(unmapped):
        log.warning(
            "TI perimeters: %d commune code(s) not in COG %s (communes nouvelles?), reported in ti_unmapped: %s",
            len(unmapped), vintage, unmapped["codgeo"].tolist()[:20],
        )
    ti = ti[ti["codgeo"].isin(known)].drop_duplicates(["ti_id", "codgeo"]).reset_index(drop=True)
    log.info(
        "geography COG %s: %d communes, %d EPCI, %d ZE, %d TI (%d TI x commune rows)",
        vintage, len(communes), len(epci), len(ze), ti["ti_id"].nunique(), len(ti),
    )
    return Geography(vintage=vintage, communes=communes, epci=epci, ze=ze, ti=ti, ti_unmapped=unmapped,
                     ti_mapped=mapped)


FORCED_PASSAGE = {"97123": "97701", "97127": "97801"}  # Saint-Barthélemy, Saint-Martin (left the 971 in 2007)


def read_merges(path: Path = MERGES_CSV) -> pd.DataFrame:
    """The bundled real table of merged communes (``code_commune_actuelle, departement, ancien_code``:
    every former commune absorbed into a commune nouvelle, COG 2026) as a passage table
    ``codgeo_ini -> codgeo``. A code whose zero was stripped (4 characters) is padded and checked
    against the ``departement`` column; anything else wrong names the file and the row."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    need = ["code_commune_actuelle", "departement", "ancien_code"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise SourceFormatError(f"{Path(path).name}: column(s) {missing} missing (found {list(df.columns)})")
    out = pd.DataFrame({"codgeo_ini": codes.normalise_commune(df["ancien_code"]),
                        "codgeo": codes.normalise_commune(df["code_commune_actuelle"])})
    dep = df["departement"].str.strip().str.upper().str.zfill(2)
    own = codes.departement_of(out["codgeo"]).fillna("")
    bad = out["codgeo"].isna() | out["codgeo_ini"].isna() | (own != dep) | ~out["codgeo"].str.fullmatch(r"[0-9][0-9AB]\d{3}")
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise SourceFormatError(f"{Path(path).name}: row {i + 2}: commune codes {df.iloc[i].tolist()} do not match "
                                f"their département")
    return out.drop_duplicates().sort_values(["codgeo_ini", "codgeo"]).reset_index(drop=True)


def _reverse_targets(passage: pd.DataFrame, targets: list[str], known: set[str], single: dict) -> dict[str, list[str]]:
    """Codes newer than the vintage (a commune nouvelle created after it, with a new code): their
    predecessors that still exist in the vintage."""
    rev = passage[passage["codgeo"].isin([c for c in targets if c not in single]) & passage["codgeo_ini"].isin(known)]
    return {k: sorted(set(v)) for k, v in rev.groupby("codgeo")["codgeo_ini"]}


def _absorbed(passage: pd.DataFrame, present: set[str], known: set[str]) -> dict[str, list[str]]:
    """Codes of the vintage that, in a newer COG, absorbed other communes of the vintage."""
    p = passage[passage["codgeo"].isin(present & known) & passage["codgeo_ini"].isin(known)
                & (passage["codgeo"] != passage["codgeo_ini"])]
    return {k: sorted(set(v)) for k, v in p.groupby("codgeo")["codgeo_ini"]}


def map_to_vintage(series: pd.Series, passage: pd.DataFrame | None, known: set[str],
                   newer_source: bool = False) -> tuple[pd.Series, dict]:
    """Translate commune codes of another COG year to the vintage's codes through a passage table.

    ``passage``: ``codgeo_ini -> codgeo`` (INSEE "table de passage", or the bundled merges table;
    one row per former code and target; several targets = a split). Rules:

    - a code in ``known`` is left alone;
    - an **older** code with exactly one target in ``known`` is replaced (merger: counts summed
      by the caller); a split (several targets) cannot be re-allocated and stays unmapped;
    - a **newer** code (a commune nouvelle created after the vintage under a new code) goes to
      its predecessor of the vintage with the smallest code (documented rule: no population is
      known to choose by; every level above the commune is exact when the predecessors share it);
    - ``newer_source``: the source is coded in a newer COG, so a vintage code that absorbed other
      communes of the vintage since then carries their counts too: reported as
      ``absorbed_after_reference`` {code: [absorbed codes]} (not changed).

    Returns the mapped series and a report: ``mapped`` {old: new}, ``newer`` {new code: target},
    ``split`` [codes], ``absorbed_after_reference``, ``unmappable_count`` and ``unmappable``
    (every code still outside ``known`` after mapping: never dropped silently).
    """
    s = series.astype("string")
    codes_in = pd.Series(s.dropna().unique(), dtype="string")
    todo = [c for c in codes_in if c not in known and c != ""]
    single: dict[str, str] = dict(FORCED_PASSAGE)
    split: set[str] = set()
    if passage is not None and len(passage) and todo:
        p = passage[passage["codgeo_ini"].isin(todo)]
        targets = p.groupby("codgeo_ini")["codgeo"].agg(lambda x: sorted(set(x)))
        for ini, tg in targets.items():
            if ini in FORCED_PASSAGE:
                continue
            in_vintage = [t for t in tg if t in known]  # an INSEE table and the merges table may both list it
            if len(in_vintage) == 1 or len(tg) == 1:
                single[ini] = (in_vintage or tg)[0]
            else:
                split.add(ini)
    mapping = {c: single[c] for c in todo if c in single and single[c] in known}
    newer: dict[str, str] = {}
    if passage is not None and len(passage) and todo:
        # a newer code, or an older one whose commune nouvelle got a code newer than the vintage
        via = {c: single.get(c, c) for c in todo if c not in mapping}
        back = _reverse_targets(passage, sorted(set(via.values())), known, mapping)
        newer = {c: back[t][0] for c, t in via.items() if t in back}
    absorbed = _absorbed(passage, set(codes_in), known) if newer_source and passage is not None and len(passage) else {}
    out = codes.per_distinct(s, lambda u: [mapping.get(c, newer.get(c, c)) for c in u])  # millions of rows
    unmappable = sorted(c for c in todo if c not in mapping and c not in newer)
    report = {"mapped": dict(sorted(mapping.items())), "newer": dict(sorted(newer.items())),
              "split": sorted(c for c in split if c in todo), "absorbed_after_reference": absorbed,
              "unmappable_count": len(unmappable), "unmappable": unmappable}
    if unmappable:
        log.warning("%d commune code(s) cannot be mapped to the vintage (%d splits): %s", len(unmappable),
                    len(report["split"]), unmappable[:20])
    return out, report
