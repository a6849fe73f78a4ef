"""SIRENE establishments: the monthly bulk stock (CSV in zip, or its Parquet twin).

The stock is streamed, never loaded whole: columns are selected by name, rows are
grouped per batch into commune x activity x state x employer x size band counts, and
only that aggregate (a few hundred thousand rows nationally) reaches pandas.
"""

from __future__ import annotations

import logging
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import codes
from ..nomenclature import INDUSTRIAL_DIVISIONS
from ..schemas import SIRENE_STOCK, SourceSchema

log = logging.getLogger(__name__)

STOCK_MEMBER = "StockEtablissement_utf8.csv"
GROUP_KEYS = [
    "codeCommuneEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "naf",
    "etatAdministratifEtablissement",
    "caractereEmployeurEtablissement",
    "trancheEffectifsEtablissement",
    "creation_year",
    "closure_year",
]
#: Establishment size bands (INSEE) -> (min, max) salaried employees.
TRANCHE_BOUNDS = {
    "00": (0, 0), "01": (1, 2), "02": (3, 5), "03": (6, 9), "11": (10, 19), "12": (20, 49),
    "21": (50, 99), "22": (100, 199), "31": (200, 249), "32": (250, 499), "41": (500, 999),
    "42": (1000, 1999), "51": (2000, 4999), "52": (5000, 9999), "53": (10000, 20000),
}


class SireneFileError(ValueError):
    pass


@dataclass
class StockParseReport:
    file: str
    rows: int = 0
    seconds: float = 0.0
    as_of: str | None = None
    foreign_rows: int = 0
    unknown_communes: dict = field(default_factory=dict)  # code -> establishments
    columns_read: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "file": self.file, "rows": self.rows, "seconds": round(self.seconds, 3), "as_of": self.as_of,
            "foreign_rows": self.foreign_rows, "unknown_commune_codes": len(self.unknown_communes),
            "unknown_commune_establishments": int(sum(self.unknown_communes.values())),
            "unknown_communes_sample": dict(sorted(self.unknown_communes.items())[:20]),
        }


def _open_member(zpath: Path, member: str):
    try:
        zf = zipfile.ZipFile(zpath)
    except zipfile.BadZipFile as exc:
        raise SireneFileError(f"{zpath.name}: not a valid zip file ({exc}); a truncated download?") from exc
    names = zf.namelist()
    if member not in names:
        csvs = [n for n in names if n.lower().endswith(".csv")]
        if len(csvs) != 1:
            raise SireneFileError(f"{zpath.name}: expected member {member!r}, found {names}")
        log.warning("%s: member %r not found, using %r", zpath.name, member, csvs[0])
        member = csvs[0]
    return zf, zf.open(member)


def _read_header(stream) -> list[str]:
    line = stream.readline().decode("utf-8-sig").rstrip("\r\n")
    return [h.strip().strip('"') for h in line.split(",")]


def iter_stock_batches(path: Path, schema: SourceSchema = SIRENE_STOCK, block_size: int = 64 << 20):
    """Yield pyarrow RecordBatches of the needed columns (all typed as strings)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix == ".parquet":
        pf = pq.ParquetFile(path)
        cols = schema.check_header(pf.schema_arrow.names, path)
        for batch in pf.iter_batches(columns=cols, batch_size=1_000_000):
            yield batch.cast(pa.schema([(c, pa.string()) for c in batch.schema.names]))
        return
    zf, stream = _open_member(path, STOCK_MEMBER)
    with zf, stream:
        header = _read_header(stream)
        cols = schema.check_header(header, path)
    zf, stream = _open_member(path, STOCK_MEMBER)
    with zf, stream:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=block_size),
            parse_options=pacsv.ParseOptions(delimiter=","),
            convert_options=pacsv.ConvertOptions(
                include_columns=cols,
                column_types={c: pa.string() for c in cols},
                strings_can_be_null=False,
            ),
        )
        try:
            for batch in reader:
                yield batch
        except (pa.ArrowInvalid, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise SireneFileError(f"{path.name}: unreadable CSV content ({exc})") from exc


def _aggregate_batch(batch: pa.RecordBatch) -> tuple[pa.Table, str | None]:
    t = pa.Table.from_batches([batch])
    naf = t["activitePrincipaleEtablissement"]
    nom = t["nomenclatureActivitePrincipaleEtablissement"]
    div = pc.utf8_slice_codeunits(naf, 0, 2)
    is_ind = pc.and_(pc.equal(nom, "NAFRev2"), pc.is_in(div, value_set=pa.array(INDUSTRIAL_DIVISIONS)))
    etat = t["etatAdministratifEtablissement"]
    empty = pa.scalar("", pa.string())
    creation_year = pc.if_else(is_ind, pc.utf8_slice_codeunits(t["dateCreationEtablissement"], 0, 4), empty)
    closed = pc.and_(is_ind, pc.equal(etat, "F"))
    closure_year = pc.if_else(closed, pc.utf8_slice_codeunits(t["dateDebut"], 0, 4), empty)
    keyed = pa.table(
        {
            "codeCommuneEtablissement": t["codeCommuneEtablissement"],
            "nomenclatureActivitePrincipaleEtablissement": nom,
            "naf": pc.if_else(is_ind, naf, div),
            "etatAdministratifEtablissement": etat,
            "caractereEmployeurEtablissement": t["caractereEmployeurEtablissement"],
            "trancheEffectifsEtablissement": t["trancheEffectifsEtablissement"],
            "creation_year": creation_year,
            "closure_year": closure_year,
        }
    )
    agg = keyed.group_by(GROUP_KEYS).aggregate([([], "count_all")])
    agg = agg.select(GROUP_KEYS + ["count_all"]).rename_columns(GROUP_KEYS + ["n"])
    mx = pc.max(t["dateDernierTraitementEtablissement"]).as_py()
    return agg, mx


def _industrial_rows(batch: pa.RecordBatch) -> pa.Table:
    t = pa.Table.from_batches([batch])
    div = pc.utf8_slice_codeunits(t["activitePrincipaleEtablissement"], 0, 2)
    mask = pc.and_(pc.equal(t["nomenclatureActivitePrincipaleEtablissement"], "NAFRev2"),
                   pc.is_in(div, value_set=pa.array(INDUSTRIAL_DIVISIONS)))
    cols = [c for c in INDUSTRIAL_EXTRACT_COLUMNS if c in t.column_names]
    return t.filter(mask).select(cols)


def _fold(parts: list[pa.Table]) -> pa.Table:
    out = pa.concat_tables(parts).group_by(GROUP_KEYS).aggregate([("n", "sum")])
    return out.select(GROUP_KEYS + ["n_sum"]).rename_columns(GROUP_KEYS + ["n"])


INDUSTRIAL_EXTRACT_COLUMNS = [
    "siret", "codeCommuneEtablissement", "activitePrincipaleEtablissement", "etatAdministratifEtablissement",
    "caractereEmployeurEtablissement", "trancheEffectifsEtablissement", "anneeEffectifsEtablissement",
    "dateCreationEtablissement", "dateDebut",
]


def aggregate_stock(
    path: Path,
    known_communes: set[str],
    progress_every: int = 5_000_000,
    industrial_extract: Path | None = None,
    on_batch=None,
) -> tuple[pd.DataFrame, StockParseReport]:
    """Stream the stock and return establishment counts per commune x activity x state.

    Output columns: codgeo, nomenclature, naf (sous-classe for industry, else division),
    division, is_industrial, etat, employer, tranche, creation_year, closure_year, n_etab.

    ``industrial_extract``: if given, the establishment-level rows of industrial units
    (NAF rév. 2 divisions 05-39, ~10 % of the stock) are written there as Parquet, for the
    indicators that need single establishments (flows, size bands, dominance).
    ``on_batch(batch)``: called with every raw RecordBatch (file-level validation on the
    stream, e.g. SIRET format and uniqueness), before aggregation.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    writer = None
    report = StockParseReport(file=path.name)
    t0 = time.perf_counter()
    parts: list[pa.Table] = []
    as_of = None
    next_log = progress_every
    for batch in iter_stock_batches(path):
        if on_batch is not None:
            on_batch(batch)
        if industrial_extract is not None:
            ext = _industrial_rows(batch)
            if writer is None:
                Path(industrial_extract).parent.mkdir(parents=True, exist_ok=True)
                tmp_extract = Path(str(industrial_extract) + ".part")
                writer = pq.ParquetWriter(tmp_extract, ext.schema)
            writer.write_table(ext)
        agg, mx = _aggregate_batch(batch)
        parts.append(agg)
        report.rows += batch.num_rows
        if mx and (as_of is None or mx > as_of):
            as_of = mx
        if report.rows >= next_log:
            el = time.perf_counter() - t0
            log.info("%s: %s rows parsed, %.0f rows/s", path.name, f"{report.rows:,}", report.rows / max(el, 1e-9))
            next_log += progress_every
        if len(parts) >= 16:  # keep memory flat: fold partial aggregates
            parts = [_fold(parts)]
    if writer is not None:
        writer.close()
        tmp_extract.replace(industrial_extract)
    if report.rows == 0:
        raise SireneFileError(f"{path.name}: no data rows (header only or empty file)")
    table = _fold(parts)
    df = table.to_pandas()
    df.columns = ["commune_raw", "nomenclature", "naf", "etat", "employer", "tranche", "creation_year", "closure_year", "n_etab"]
    foreign = df["commune_raw"].fillna("").str.strip().eq("")
    report.foreign_rows = int(df.loc[foreign, "n_etab"].sum())
    df = df[~foreign].copy()
    df["codgeo"] = codes.arm_to_commune(codes.normalise_commune(df["commune_raw"]))
    unknown = ~df["codgeo"].isin(known_communes)
    report.unknown_communes = df[unknown].groupby("codgeo")["n_etab"].sum().astype(int).to_dict()
    if report.unknown_communes:
        log.warning(
            "%s: %d establishment(s) in %d commune code(s) outside the COG vintage (kept in the report, not mapped): %s",
            path.name, sum(report.unknown_communes.values()), len(report.unknown_communes),
            list(report.unknown_communes)[:10],
        )
    df = df[~unknown].drop(columns="commune_raw")
    df["division"] = df["naf"].str[:2]
    df["is_industrial"] = (df["nomenclature"] == "NAFRev2") & df["division"].isin(INDUSTRIAL_DIVISIONS)
    keys = ["codgeo", "nomenclature", "naf", "division", "is_industrial", "etat", "employer", "tranche", "creation_year", "closure_year"]
    df = df.groupby(keys, as_index=False, dropna=False)["n_etab"].sum().sort_values(keys).reset_index(drop=True)
    report.seconds = time.perf_counter() - t0
    report.as_of = as_of[:10] if as_of else None
    log.info(
        "%s: %s rows in %.1f s (%.0f rows/s), as-of %s, %d aggregate rows",
        path.name, f"{report.rows:,}", report.seconds, report.rows / max(report.seconds, 1e-9), report.as_of, len(df),
    )
    return df, report
