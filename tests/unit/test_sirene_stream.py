"""The fast SIRENE stock reader (ISA-L inflate + pyarrow stream + integer-key counting) gives
exactly the aggregate of a plain pandas implementation, whatever the zip flavour (deflate
pieces, ZIP64, data descriptor, stored, Parquet twin), and fails loudly on bad files.
The benchmark generator is deterministic."""

from __future__ import annotations

import hashlib
import io
import struct
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from territoires_industrie import codes
from territoires_industrie.indicators.domains import band_counts_all
from territoires_industrie.indicators.secrecy import BAND_MIDPOINT
from territoires_industrie.nomenclature import INDUSTRIAL_DIVISIONS
from territoires_industrie.schemas import SIRENE_STOCK_ALL_COLUMNS
from territoires_industrie.sources.sirene import SireneFileError, aggregate_stock, iter_stock_batches

from ..conftest import REPO, sirene_row, write_sirene_zip

sys.path.insert(0, str(REPO / "bench"))
import gen_sirene_stock as gen  # noqa: E402

MEMBER = "StockEtablissement_utf8.csv"
KEYS = ["codgeo", "nomenclature", "naf", "division", "is_industrial", "etat", "employer", "tranche"]


@pytest.fixture(scope="module")
def stock(tmp_path_factory, geography):
    """30,000 synthetic rows in 3 deflate pieces of 10,000 (the generator's pigz-like layout)."""
    d = tmp_path_factory.mktemp("stock")
    z = d / "StockEtablissement_utf8.zip"
    gen.generate_stock(z, 30_000, seed=3, workers=1, chunk_rows=10_000, geography=geography)
    with zipfile.ZipFile(z) as zf:
        csv_bytes = zf.read(MEMBER)
    return z, csv_bytes, set(geography.commune_codes())


def reference(csv_bytes: bytes, known: set[str]) -> tuple[pd.DataFrame, int, dict, str]:
    """Plain pandas: read everything as text, derive the keys row by row, group."""
    df = pd.read_csv(io.BytesIO(csv_bytes), dtype=str, keep_default_na=False)
    foreign = df["codeCommuneEtablissement"].str.strip() == ""
    codgeo = codes.arm_to_commune(codes.normalise_commune(df["codeCommuneEtablissement"]))
    div = df["activitePrincipaleEtablissement"].str[:2]
    ind = (df["nomenclatureActivitePrincipaleEtablissement"] == "NAFRev2") & div.isin(INDUSTRIAL_DIVISIONS)
    active_employer = (df["etatAdministratifEtablissement"] == "A") & (df["caractereEmployeurEtablissement"] == "O")
    out = pd.DataFrame({
        "codgeo": codgeo, "nomenclature": df["nomenclatureActivitePrincipaleEtablissement"],
        "naf": df["activitePrincipaleEtablissement"].where(ind, ""), "division": div.where(ind, ""),
        "is_industrial": ind,
        "etat": df["etatAdministratifEtablissement"], "employer": df["caractereEmployeurEtablissement"],
        # band kept for industry and for the active employers of every sector (all-sector dominance)
        "tranche": df["trancheEffectifsEtablissement"].where(ind | active_employer, ""),
    })
    unknown = ~foreign & ~codgeo.isin(known)
    unknown_counts = codgeo[unknown].value_counts().astype(int).to_dict()
    agg = out[~foreign & ~unknown].groupby(KEYS, as_index=False).size().rename(columns={"size": "n_etab"})
    as_of = df["dateDernierTraitementEtablissement"].max()[:10]
    return agg.sort_values(KEYS).reset_index(drop=True), int(foreign.sum()), unknown_counts, as_of


def assert_same(got: pd.DataFrame, rep, csv_bytes: bytes, known: set[str]) -> None:
    exp, foreign, unknown, as_of = reference(csv_bytes, known)
    assert list(got.columns) == KEYS + ["n_etab"]
    assert str(got["codgeo"].dtype) == "string" and str(got["naf"].dtype) == "str"
    assert got["n_etab"].dtype == "int64" and got["is_industrial"].dtype == bool
    cmp = got.astype({c: object for c in KEYS if c != "is_industrial"})
    pd.testing.assert_frame_equal(cmp, exp.astype({c: object for c in KEYS if c != "is_industrial"}),
                                  check_dtype=False)
    assert rep.foreign_rows == foreign
    assert rep.unknown_communes == unknown
    assert rep.as_of == as_of
    assert rep.rows == len(pd.read_csv(io.BytesIO(csv_bytes), usecols=["siret"]))


def test_generated_stock_matches_pandas_reference(stock, tmp_path):
    z, csv_bytes, known = stock
    df, rep = aggregate_stock(z, known, progress_every=7_000)
    assert_same(df, rep, csv_bytes, known)
    # the synthetic stock looks like the real one
    assert rep.rows == 30_000 and rep.foreign_rows > 0 and rep.unknown_communes
    assert 0.07 < df.loc[df["is_industrial"], "n_etab"].sum() / rep.rows < 0.11
    assert 0.40 < df.loc[df["etat"] == "F", "n_etab"].sum() / rep.rows < 0.50


def _zip_with(path: Path, csv_bytes: bytes, *, stored=False, force_zip64=False, descriptor=False) -> Path:
    info = zipfile.ZipInfo(MEMBER, date_time=(2026, 11, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    if descriptor:  # an unseekable sink makes zipfile write a data descriptor (flag bit 3)
        class Sink(io.RawIOBase):
            def __init__(self):
                self.buf = bytearray()

            def writable(self):
                return True

            def write(self, b):
                self.buf += b
                return len(b)

        sink = Sink()
        with zipfile.ZipFile(sink, "w") as zf, zf.open(info, "w", force_zip64=force_zip64) as fh:
            fh.write(csv_bytes)
        path.write_bytes(bytes(sink.buf))
    else:
        with zipfile.ZipFile(path, "w") as zf, zf.open(info, "w", force_zip64=force_zip64) as fh:
            fh.write(csv_bytes)
    return path


@pytest.mark.parametrize("flavour", ["zip64", "descriptor", "zip64+descriptor", "stored"])
def test_zip_flavours_give_the_same_aggregate(stock, tmp_path, flavour):
    _, csv_bytes, known = stock
    z = _zip_with(tmp_path / "StockEtablissement_utf8.zip", csv_bytes, stored=flavour == "stored",
                  force_zip64="zip64" in flavour, descriptor="descriptor" in flavour)
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo(MEMBER)
    assert bool(info.flag_bits & 0x08) == ("descriptor" in flavour)
    if "zip64" in flavour:  # the local header carries the ZIP64 extra field (id 0x0001)
        raw = z.read_bytes()
        assert struct.unpack("<H", raw[30 + len(MEMBER):32 + len(MEMBER)])[0] == 0x0001
    df, rep = aggregate_stock(z, known)
    assert_same(df, rep, csv_bytes, known)


def test_parquet_twin_with_typed_columns_gives_the_same_aggregate(stock, tmp_path):
    _, csv_bytes, known = stock
    t = pacsv.read_csv(pa.BufferReader(csv_bytes), convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in SIRENE_STOCK_ALL_COLUMNS}, strings_can_be_null=True))
    # the official twin types its dates: date32 / timestamp, nulls for empty cells
    typed = t.set_column(t.schema.get_field_index("dateDernierTraitementEtablissement"), "dateDernierTraitementEtablissement",
                         t["dateDernierTraitementEtablissement"].cast(pa.timestamp("s")))
    typed = typed.set_column(typed.schema.get_field_index("dateDebut"), "dateDebut", typed["dateDebut"].cast(pa.date32()))
    p = tmp_path / "StockEtablissement_utf8.parquet"
    pq.write_table(typed, p, row_group_size=7_000)
    seen = []
    df, rep = aggregate_stock(p, known, on_batch=lambda b: seen.append(b.schema))
    assert_same(df, rep, csv_bytes, known)
    # projection: only the schema's columns are read, all as strings
    assert "libelleVoieEtablissement" not in seen[0].names and "siret" in seen[0].names
    assert all(f.type == pa.string() for f in seen[0])


def test_on_batch_sees_every_row_as_strings_and_extract_is_complete(stock, tmp_path):
    z, csv_bytes, known = stock
    seen = {"rows": 0, "sirets": []}

    def on_batch(b):
        assert all(f.type == pa.string() for f in b.schema)
        seen["rows"] += b.num_rows
        seen["sirets"] += b.column("siret").to_pylist()

    ext = tmp_path / "ind" / "industrial_establishments.parquet"
    df, rep = aggregate_stock(z, known, on_batch=on_batch, industrial_extract=ext)
    ref = pd.read_csv(io.BytesIO(csv_bytes), dtype=str, keep_default_na=False)
    assert seen["rows"] == 30_000 and seen["sirets"] == ref["siret"].tolist()
    got = pd.read_parquet(ext)
    div = ref["activitePrincipaleEtablissement"].str[:2]
    exp = ref[(ref["nomenclatureActivitePrincipaleEtablissement"] == "NAFRev2") & div.isin(INDUSTRIAL_DIVISIONS)]
    assert got["siret"].tolist() == exp["siret"].tolist()
    assert list(got.columns)[:3] == ["siret", "codeCommuneEtablissement", "activitePrincipaleEtablissement"]
    assert not list(ext.parent.glob("*.part"))


def test_arrondissements_merge_into_one_group(tmp_path):
    rows = [sirene_row(siret=f"0000000000000{i}", codeCommuneEtablissement=c)
            for i, c in enumerate(["75112", "75101", "75056", "1001"])]
    z = write_sirene_zip(tmp_path / "StockEtablissement_utf8.zip", rows)
    df, rep = aggregate_stock(z, {"75056", "01001"})
    # 3 Paris rows with identical keys -> one group of 3; "1001" lost its zero -> 01001
    assert df[["codgeo", "n_etab"]].values.tolist() == [["01001", 1], ["75056", 3]]


def test_large_employer_of_any_sector_reaches_the_all_sector_dominance_counts(tmp_path):
    """A 1,000-1,999 hospital (86.10Z) must weigh in the dominance rule of the all-sector
    cell: its band survives the aggregation, while the activity code of non-industrial
    units is blanked (their groups stay commune x state x employer x band)."""
    rows = [
        sirene_row(siret="11111111100011", activitePrincipaleEtablissement="86.10Z",
                   caractereEmployeurEtablissement="O", trancheEffectifsEtablissement="42"),
        sirene_row(siret="11111111100029", activitePrincipaleEtablissement="47.11F",
                   caractereEmployeurEtablissement="O", trancheEffectifsEtablissement="42"),
        sirene_row(siret="11111111100037", activitePrincipaleEtablissement="25.62B",
                   caractereEmployeurEtablissement="O", trancheEffectifsEtablissement="12"),
        # closed non-industrial unit: its band is not read by any indicator
        sirene_row(siret="11111111100045", activitePrincipaleEtablissement="56.10A",
                   etatAdministratifEtablissement="F", caractereEmployeurEtablissement="O",
                   trancheEffectifsEtablissement="03"),
    ]
    z = write_sirene_zip(tmp_path / "StockEtablissement_utf8.zip", rows)
    df, rep = aggregate_stock(z, {"25056"})
    other = df[~df["is_industrial"]]
    assert other[["naf", "division", "etat", "tranche", "n_etab"]].values.tolist() == [
        ["", "", "A", "42", 2], ["", "", "F", "", 1]]
    ind = df[df["is_industrial"]]
    assert ind[["naf", "division", "tranche", "n_etab"]].values.tolist() == [["25.62B", "25", "12", 1]]
    bands = band_counts_all(df).loc["25056"]
    assert bands["band_max_all"] == BAND_MIDPOINT["42"]  # the hospital, not the 20-49 plant
    assert bands["band_n_all"] == 3
    assert bands["band_sum_all"] == 2 * BAND_MIDPOINT["42"] + BAND_MIDPOINT["12"]


def test_truncated_zip_names_the_file_and_leaves_the_extract_untouched(stock, tmp_path):
    z, _, known = stock
    cut = tmp_path / "StockEtablissement_utf8.zip"
    cut.write_bytes(z.read_bytes()[: z.stat().st_size * 2 // 3])
    ext = tmp_path / "industrial_establishments.parquet"
    ext.write_bytes(b"previous good extract")
    with pytest.raises(SireneFileError, match="StockEtablissement_utf8.zip: not a valid zip file"):
        aggregate_stock(cut, known, industrial_extract=ext)
    assert ext.read_bytes() == b"previous good extract"


def _patch_crc(z: Path, crc: int) -> None:
    raw = bytearray(z.read_bytes())
    struct.pack_into("<I", raw, 14, crc)  # local header
    cd = raw.rfind(b"PK\x01\x02")
    struct.pack_into("<I", raw, cd + 16, crc)  # central directory
    z.write_bytes(bytes(raw))


def test_crc_mismatch_is_an_error_after_the_last_row(stock, tmp_path):
    _, csv_bytes, known = stock
    z = _zip_with(tmp_path / "StockEtablissement_utf8.zip", csv_bytes)
    with zipfile.ZipFile(z) as zf:
        good = zf.getinfo(MEMBER).CRC
    _patch_crc(z, good ^ 0x5A5A5A5A)
    ext = tmp_path / "industrial_establishments.parquet"
    with pytest.raises(SireneFileError, match=r"StockEtablissement_utf8.zip: CRC-32 mismatch .* member 'StockEtablissement_utf8.csv'"):
        aggregate_stock(z, known, industrial_extract=ext)
    assert not ext.exists() and not list(tmp_path.glob("*.part"))


def test_corrupt_deflate_data_is_an_error(stock, tmp_path):
    _, csv_bytes, known = stock
    z = _zip_with(tmp_path / "StockEtablissement_utf8.zip", csv_bytes)
    raw = bytearray(z.read_bytes())
    start = 30 + len(MEMBER)
    for i in range(start + 2000, start + 2400):
        raw[i] ^= 0xFF
    z.write_bytes(bytes(raw))
    with pytest.raises(SireneFileError, match="StockEtablissement_utf8.zip: (invalid deflate data|CRC-32 mismatch|inflated size)"):
        aggregate_stock(z, known)


def test_compressed_data_cut_inside_the_member(stock, tmp_path):
    """Central directory present but the member's data shorter than announced."""
    _, csv_bytes, known = stock
    z = _zip_with(tmp_path / "StockEtablissement_utf8.zip", csv_bytes)
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo(MEMBER)
    raw = z.read_bytes()
    data_start = 30 + len(MEMBER)
    keep = data_start + info.compress_size // 2
    bad = tmp_path / "bad.zip"
    bad.write_bytes(raw[:keep] + raw[data_start + info.compress_size:])  # directory offsets now point past the end
    with pytest.raises(SireneFileError, match="bad.zip"):
        aggregate_stock(bad, known)


def test_plain_csv_and_block_sizes(stock, tmp_path):
    z, csv_bytes, known = stock
    p = tmp_path / "StockEtablissement_utf8.csv"
    p.write_bytes(csv_bytes)
    df, rep = aggregate_stock(p, known)
    assert_same(df, rep, csv_bytes, known)
    small = sum(b.num_rows for b in iter_stock_batches(z, block_size=1 << 16))
    assert small == 30_000


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_generator_is_deterministic_and_zip_is_valid(geography, tmp_path):
    a, b, c = tmp_path / "a.zip", tmp_path / "b.zip", tmp_path / "c.zip"
    gen.generate_stock(a, 5_000, seed=11, workers=1, chunk_rows=2_000, geography=geography)
    gen.generate_stock(b, 5_000, seed=11, workers=2, chunk_rows=2_000, geography=geography)
    gen.generate_stock(c, 5_000, seed=12, workers=1, chunk_rows=2_000, geography=geography)
    assert _sha(a) == _sha(b)  # worker count does not change a byte
    assert _sha(a) != _sha(c)
    with zipfile.ZipFile(a) as zf:
        assert zf.testzip() is None  # CRC verified by the stdlib
        info = zf.getinfo(MEMBER)
        head = zf.open(MEMBER).readline().decode().rstrip("\n").split(",")
        body = zf.read(MEMBER).decode()
    assert head == list(SIRENE_STOCK_ALL_COLUMNS)
    assert body.count("\n") == 5_001 and info.compress_type == zipfile.ZIP_DEFLATED
    sirets = pd.read_csv(io.BytesIO(body.encode()), dtype=str, usecols=["siret"])["siret"]
    assert sirets.is_unique and sirets.is_monotonic_increasing and sirets.str.fullmatch(r"\d{14}").all()
    assert all(_luhn_ok(s) for s in sirets.head(200))


def _luhn_ok(s: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(s)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def test_history_generator_matches_its_stock_and_reads_back(stock, geography, tmp_path):
    """The benchmark's StockEtablissementHistorique: the 18 official columns, one row per period
    of every SIRET of the same-seed stock (``nombrePeriodesEtablissement``), the open period
    carrying the stock state, and the project's history reader gives that state today."""
    from territoires_industrie.sample.generate import HISTORY_COLUMNS
    from territoires_industrie.sources.sirene_history import states_at_year_ends

    z, csv_bytes, _ = stock
    h = tmp_path / "StockEtablissementHistorique_utf8.zip"
    gen.generate_history(h, 30_000, seed=3, workers=1, chunk_rows=10_000, geography=geography)
    with zipfile.ZipFile(h) as zf:
        hist = pd.read_csv(zf.open(gen.HISTORY_MEMBER), dtype=str, keep_default_na=False)
    st = pd.read_csv(io.BytesIO(csv_bytes), dtype=str, keep_default_na=False)
    assert list(hist.columns) == HISTORY_COLUMNS
    assert len(hist) == st["nombrePeriodesEtablissement"].astype(int).sum()
    assert hist["siret"].is_monotonic_increasing and set(hist["siret"]) == set(st["siret"])
    open_ = hist[hist["dateFin"] == ""].set_index("siret")
    assert len(open_) == len(st)  # exactly one open period per SIRET
    s = st.set_index("siret")
    assert (open_["etatAdministratifEtablissement"] == s["etatAdministratifEtablissement"]).all()
    assert (open_["dateDebut"] == s["dateDebut"]).all()
    closed_ = hist[hist["dateFin"] != ""]
    assert (closed_["dateFin"] >= closed_["dateDebut"]).all()
    sample = st["siret"].iloc[::97]
    states, rep = states_at_year_ends(h, sample, [2026])
    now = states.set_index("siret")
    exists = s.loc[sample, "dateDebut"] <= "2026-12-31"
    assert set(now.index) == set(sample[exists.to_numpy()])
    assert (now["etat"] == s.loc[now.index, "etatAdministratifEtablissement"]).all()
