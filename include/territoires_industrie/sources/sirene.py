"""SIRENE establishments: the monthly bulk stock (CSV in zip, or its Parquet twin).

The national stock (~44M rows, ~2 GB zip, ~8 GB CSV, 54 columns) is streamed, never
loaded whole, on a 2-core worker:

* the zip member is inflated by a raw-deflate stream reader (ISA-L ``isal_zlib`` when
  installed, about 2x faster than zlib; stdlib ``zlib`` otherwise), located through the
  central directory (ZIP64 and data descriptors handled), with the CRC-32 and size of the
  member checked at the end: a truncated or corrupt download raises :class:`SireneFileError`
  naming the file;
* pyarrow's streaming CSV reader parses it block by block on the CPU pool while the
  inflate runs on its read-ahead thread; only the needed columns are converted, by name;
* each batch is turned into small integer codes (one growing dictionary per key column,
  looked up with ``pyarrow.compute.index_in``), packed into one uint64 key per row and
  counted with numpy sort/run-length merges, so the streaming state is O(distinct groups),
  8 + 8 bytes per group, whatever the number of rows;
* commune normalisation (arrondissements -> commune, stripped zeros) and the final sort are
  done on the dictionaries and on the integer keys, then the strings are materialised once.

Measured engines and numbers: ``bench/RESULTS.md`` (``bench/bench_ingest.py``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import struct
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import codes
from ..errors import DataError
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
]
#: Establishment size bands (INSEE) -> (min, max) salaried employees.
TRANCHE_BOUNDS = {
    "00": (0, 0), "01": (1, 2), "02": (3, 5), "03": (6, 9), "11": (10, 19), "12": (20, 49),
    "21": (50, 99), "22": (100, 199), "31": (200, 249), "32": (250, 499), "41": (500, 999),
    "42": (1000, 1999), "51": (2000, 4999), "52": (5000, 9999), "53": (10000, 20000),
}
INDUSTRIAL_EXTRACT_COLUMNS = [
    "siret", "codeCommuneEtablissement", "activitePrincipaleEtablissement", "etatAdministratifEtablissement",
    "caractereEmployeurEtablissement", "trancheEffectifsEtablissement", "anneeEffectifsEtablissement",
    "dateCreationEtablissement", "dateDebut",
]
#: CSV block handed to the parser: small blocks keep inflate and parsing overlapped
#: (measured: 2-4 MB best on 2 cores, 64 MB is 2x slower) and memory flat.
DEFAULT_BLOCK_SIZE = 4 << 20
_INFLATE_CHUNK = 1 << 20
_KEY_PENDING_ROWS = 1_000_000  # rows of uint64 keys buffered before a sort/merge (8 MB)
_EXTRACT_ROW_GROUP = 131_072  # rows buffered per Parquet row group: bounds the extract's memory early
_GROUP_ROWS = 100_000  # stream batches are processed together in groups of ~100k rows


class SireneFileError(DataError, ValueError):
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


# ---------------------------------------------------------------------------------------------
# Zip member as a verified raw-deflate stream
# ---------------------------------------------------------------------------------------------
def _inflater():
    """(decompressobj factory, crc32) from ISA-L when installed, else the stdlib."""
    try:
        from isal import isal_zlib

        return (lambda: isal_zlib.decompressobj(-15)), isal_zlib.crc32, isal_zlib.error
    except ImportError:  # pragma: no cover - isal is pinned in requirements.txt
        return (lambda: zlib.decompressobj(-15)), zlib.crc32, zlib.error


class ZipMemberReader(io.RawIOBase):
    """Read-only stream of one deflated (or stored) zip member.

    Sizes, CRC and offset come from the central directory (so ZIP64 members and members
    written with a data descriptor work); the local header is parsed only for the length
    of its name and extra field. At the end of the member the inflated size and CRC-32 are
    compared with the directory, and the deflate stream must be complete: any mismatch,
    a short file or corrupt data raises :class:`SireneFileError` naming the file.
    """

    def __init__(self, path: Path, info: zipfile.ZipInfo, chunk: int = _INFLATE_CHUNK):
        super().__init__()
        self.path = Path(path)
        self.info = info
        self._chunk = chunk
        self._fh = open(self.path, "rb")
        try:
            head = b""
            if info.header_offset >= 0:
                self._fh.seek(info.header_offset)
                head = self._fh.read(30)
            if len(head) < 30 or head[:4] != b"PK\x03\x04":
                raise SireneFileError(f"{self.path.name}: no local header for member {info.filename!r} at offset "
                                      f"{info.header_offset:,}; a truncated or corrupt download?")
            name_len, extra_len = struct.unpack("<HH", head[26:30])
            self._fh.seek(info.header_offset + 30 + name_len + extra_len)
        except BaseException:
            self._fh.close()
            raise
        self._left = info.compress_size
        self._stored = info.compress_type == zipfile.ZIP_STORED
        make, self._crc32, self._zerror = _inflater()
        self._d = None if self._stored else make()
        self._tail = b""
        self._pending = b""  # bytes pushed back (header sniffing)
        self.crc = 0
        self.size = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def unread(self, data: bytes) -> None:
        self._pending = data + self._pending

    def _fail(self, what: str):
        raise SireneFileError(f"{self.path.name}: {what} in member {self.info.filename!r}; a truncated or corrupt download?")

    def _next(self, n: int) -> bytes:
        """Up to ``n`` inflated bytes; b'' only at the verified end of the member."""
        while not self._done:
            if self._tail:
                data, self._tail = self._tail, b""
            elif self._left > 0:
                data = self._fh.read(min(self._chunk, self._left))
                if not data:
                    self._fail(f"file ends {self._left:,} bytes before the end of the compressed data")
                self._left -= len(data)
            else:
                data = b""
            if self._stored:
                out = data
            else:
                try:
                    out = self._d.decompress(data, n) if data else self._d.flush()
                except self._zerror as exc:
                    self._fail(f"invalid deflate data ({exc})")
                self._tail = self._d.unconsumed_tail
            if out:
                self.crc = self._crc32(out, self.crc)
                self.size += len(out)
                return out
            if not data and not self._tail:
                self._finish()
        return b""

    def _finish(self) -> None:
        self._done = True
        if not self._stored and not self._d.eof:
            self._fail("deflate stream ends early")
        if self.size != self.info.file_size:
            self._fail(f"inflated size {self.size:,} != {self.info.file_size:,} announced")
        if self.crc != self.info.CRC:
            self._fail(f"CRC-32 mismatch ({self.crc:08x} != {self.info.CRC:08x})")

    def read(self, n: int = -1) -> bytes:
        if self._pending:
            if n is None or n < 0 or n >= len(self._pending):
                out, self._pending = self._pending, b""
            else:
                out, self._pending = self._pending[:n], self._pending[n:]
            return out
        if n is None or n < 0:
            return b"".join(iter(lambda: self._next(self._chunk * 4), b""))
        return self._next(n) if n else b""

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


def _peak_rss_mb() -> str:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return f"{int(line.split()[1]) // 1024:,}"
    except OSError:
        pass
    return "?"


def _member_info(zpath: Path, member: str) -> zipfile.ZipInfo:
    try:
        with zipfile.ZipFile(zpath) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SireneFileError(f"{zpath.name}: not a valid zip file ({exc}); a truncated download?") from exc
    by_name = {i.filename: i for i in infos}
    if member in by_name:
        return by_name[member]
    csvs = [i for i in infos if i.filename.lower().endswith(".csv")]
    if len(csvs) != 1:
        raise SireneFileError(f"{zpath.name}: expected member {member!r}, found {list(by_name)}")
    log.warning("%s: member %r not found, using %r", zpath.name, member, csvs[0].filename)
    return csvs[0]


def open_stock_stream(path: Path, member: str = STOCK_MEMBER):
    """A binary stream of the stock CSV: zip member (verified inflate) or a plain ``.csv``."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return open(path, "rb")
    info = _member_info(path, member)
    if info.compress_type in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED):
        return ZipMemberReader(path, info)
    log.warning("%s: compression method %d, falling back to zipfile (slower)", path.name, info.compress_type)
    zf = zipfile.ZipFile(path)
    return zf.open(info)


def _sniff_header(stream) -> list[str]:
    head = b""
    while b"\n" not in head:
        chunk = stream.read(1 << 16)
        if not chunk:
            break
        head += chunk
    if hasattr(stream, "unread"):
        stream.unread(head)
    line = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    return [h.strip().strip('"') for h in line.split(",")]


def iter_stock_batches(path: Path, schema: SourceSchema = SIRENE_STOCK, block_size: int = DEFAULT_BLOCK_SIZE,
                       member: str = STOCK_MEMBER):
    """Yield pyarrow RecordBatches of the needed columns (all typed as strings, no nulls:
    an empty CSV field is ``""``). Accepts the zip, a plain CSV or the Parquet twin.
    ``member``: the CSV inside the zip (the history file uses the same reader)."""
    import pyarrow.csv as pacsv

    path = Path(path)
    if path.suffix.lower() == ".parquet":
        yield from _iter_parquet_batches(path, schema)
        return
    stream = open_stock_stream(path, member)
    with contextlib.closing(stream):
        if hasattr(stream, "unread"):
            header = _sniff_header(stream)
            cols = schema.check_header(header, path)
        else:  # plain CSV or fallback zip stream: read the header on a second handle
            with contextlib.closing(open_stock_stream(path, member)) as s2:
                cols = schema.check_header(_sniff_header(s2), path)
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=block_size, use_threads=True),
                parse_options=pacsv.ParseOptions(delimiter=","),
                convert_options=pacsv.ConvertOptions(
                    include_columns=cols,
                    column_types={c: pa.string() for c in cols},
                    strings_can_be_null=False,
                ),
            )
            for batch in reader:
                yield batch
        except SireneFileError:
            raise
        except (pa.ArrowInvalid, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise SireneFileError(f"{path.name}: unreadable CSV content ({exc})") from exc


def _iter_parquet_batches(path: Path, schema: SourceSchema, batch_size: int = 262_144):
    """Official Parquet twin: column projection by name, cast to strings, nulls -> ''."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SireneFileError(f"{path.name}: not a readable Parquet file ({exc})") from exc
    cols = schema.check_header(pf.schema_arrow.names, path)
    try:
        for batch in pf.iter_batches(columns=cols, batch_size=batch_size):
            arrays = []
            for c in cols:
                a = batch.column(c)
                if pa.types.is_timestamp(a.type):  # as in the CSV: 2026-10-31T23:10:00
                    a = pc.strftime(a, format="%Y-%m-%dT%H:%M:%S")
                elif not pa.types.is_string(a.type):
                    a = a.cast(pa.string())
                arrays.append(a.fill_null(""))
            yield pa.RecordBatch.from_arrays(arrays, names=cols)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SireneFileError(f"{path.name}: unreadable Parquet content ({exc})") from exc


# ---------------------------------------------------------------------------------------------
# Streaming aggregation on integer codes
# ---------------------------------------------------------------------------------------------
class _Dictionary:
    """Growing string dictionary; ``codes(array)`` maps values to int32 codes (hash lookup)."""

    def __init__(self, initial=()):
        self.values: list[str] = list(initial)
        self.array = pa.array(self.values, pa.string())

    def __len__(self) -> int:
        return len(self.values)

    def codes(self, arr) -> np.ndarray:
        """int32 codes of ``arr`` (Array or ChunkedArray), new values appended."""
        idx = pc.index_in(arr, value_set=self.array)
        if idx.null_count:
            missing = pc.unique(arr.filter(pc.is_null(idx))).to_pylist()
            self.values.extend(missing)
            self.array = pa.array(self.values, pa.string())
            idx = pc.index_in(arr, value_set=self.array)
        return idx.to_numpy() if isinstance(idx, pa.ChunkedArray) else idx.to_numpy(zero_copy_only=False)


_COMPONENTS = ("commune", "nomenclature", "naf", "etat", "employer", "tranche")
_INITIAL_BITS = (17, 3, 11, 2, 2, 5)  # 40 of 64 bits; widened on demand


class _Layout:
    def __init__(self, bits):
        self.bits = tuple(bits)
        if sum(self.bits) > 64:
            raise OverflowError
        self.shifts = tuple(int(sum(self.bits[i + 1:])) for i in range(len(self.bits)))

    def encode(self, parts) -> np.ndarray:
        key = np.zeros(len(parts[0]), dtype=np.uint64)
        for p, s in zip(parts, self.shifts):
            key |= p.astype(np.uint64) << np.uint64(s)
        return key

    def decode(self, key: np.ndarray, i: int) -> np.ndarray:
        return ((key >> np.uint64(self.shifts[i])) & np.uint64((1 << self.bits[i]) - 1)).astype(np.int32)


def _runs(sorted_keys: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))


class _Counter:
    """Counts of uint64 keys: per-row keys are buffered, sorted (SIMD), run-length encoded
    and merged into a sorted (keys, counts) accumulator (timsort merges two sorted runs)."""

    def __init__(self):
        self.keys = np.zeros(0, dtype=np.uint64)
        self.counts = np.zeros(0, dtype=np.uint32)  # < 4.3 billion establishments per group
        self.pending: list[np.ndarray] = []
        self.pending_rows = 0

    def size(self) -> int:
        self.flush()
        return len(self.keys)

    def add(self, keys: np.ndarray) -> None:
        self.pending.append(keys)
        self.pending_rows += len(keys)
        if self.pending_rows >= _KEY_PENDING_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        s = np.sort(np.concatenate(self.pending))
        self.pending, self.pending_rows = [], 0
        starts = _runs(s)
        self._merge(s[starts], np.diff(np.append(starts, len(s))))

    def _merge(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """Merge sorted unique (keys, counts) in place: O(N) copies, ~2 x 12 bytes per group at peak."""
        counts = counts.astype(np.uint32)
        if len(self.keys) == 0:
            self.keys, self.counts = keys, counts
            return
        pos = np.searchsorted(self.keys, keys)  # sorted needles: numpy reuses the previous bound
        hit = pos < len(self.keys)
        hit[hit] = self.keys[pos[hit]] == keys[hit]
        self.counts[pos[hit]] += counts[hit]  # keys are unique: no repeated position
        miss = ~hit
        if miss.any():
            at = pos[miss]
            self.keys = np.insert(self.keys, at, keys[miss])
            self.counts = np.insert(self.counts, at, counts[miss])

    def relayout(self, old: _Layout, new: _Layout) -> None:
        self.flush()
        parts = [old.decode(self.keys, i) for i in range(len(old.bits))]
        keys = new.encode(parts)
        order = np.argsort(keys)
        self.keys, self.counts = keys[order], self.counts[order]


class _StockAggregator:
    def __init__(self, file: str):
        self.file = file
        self.dicts = {
            "commune": _Dictionary(), "nomenclature": _Dictionary(["NAFRev2"]), "naf_raw": _Dictionary(),
            "naf": _Dictionary([""]), "etat": _Dictionary(["A", "F"]), "employer": _Dictionary(["O", "N", ""]),
            "tranche": _Dictionary(["NN", ""]),
        }
        self.layout = _Layout(_INITIAL_BITS)
        self.counter = _Counter()
        self._lut_shape = (0, 0)
        self._lut_naf = self._lut_ind = None
        self.as_of: str | None = None
        self._industrial_divisions = frozenset(INDUSTRIAL_DIVISIONS)

    def _refresh_lut(self) -> None:
        """(nomenclature, raw activity code) -> output ``naf`` code and industrial flag."""
        noms, nafs = self.dicts["nomenclature"].values, self.dicts["naf_raw"].values
        if self._lut_shape == (len(noms), len(nafs)):
            return
        div_ind = np.array([a[:2] in self._industrial_divisions for a in nafs], dtype=bool)
        is_rev2 = np.array([v == "NAFRev2" for v in noms], dtype=bool)
        ind = is_rev2[:, None] & div_ind[None, :]
        out_dict = self.dicts["naf"]
        full = out_dict.codes(pa.array(nafs, pa.string())) if nafs else np.zeros(0, np.int64)
        self._lut_naf = np.where(ind, full[None, :], 0).ravel()  # other sectors: "" (code 0)
        self._lut_ind = ind.ravel()
        self._lut_shape = (len(noms), len(nafs))

    def _check_layout(self) -> None:
        sizes = [len(self.dicts[k]) for k in _COMPONENTS]
        if all(s <= 1 << b for s, b in zip(sizes, self.layout.bits)):
            return
        bits = [max(b, int(s - 1).bit_length() + 1) if s > 1 << b else b for s, b in zip(sizes, self.layout.bits)]
        try:
            new = _Layout(bits)
        except OverflowError:
            worst = max(zip(sizes, _COMPONENTS))
            raise SireneFileError(
                f"{self.file}: too many distinct values ({worst[0]:,} in {worst[1]}): not a SIRENE establishment stock?"
            ) from None
        log.info("%s: widening the group key layout to %s bits", self.file, dict(zip(_COMPONENTS, bits)))
        self.counter.relayout(self.layout, new)
        self.layout = new

    def add(self, table: pa.Table) -> np.ndarray:
        """Count the rows of ``table`` (a few stream batches); returns the industrial-row mask."""
        d = self.dicts
        col = table.column
        com = d["commune"].codes(col("codeCommuneEtablissement"))
        nom = d["nomenclature"].codes(col("nomenclatureActivitePrincipaleEtablissement"))
        naf_raw = d["naf_raw"].codes(col("activitePrincipaleEtablissement"))
        etat = d["etat"].codes(col("etatAdministratifEtablissement"))
        emp = d["employer"].codes(col("caractereEmployeurEtablissement"))
        tranche = d["tranche"].codes(col("trancheEffectifsEtablissement"))
        self._refresh_lut()
        flat = nom.astype(np.int64) * self._lut_shape[1] + naf_raw
        ind = self._lut_ind[flat]
        # Other sectors are only read as commune x state x employer counts and, for active
        # employers, their size band (dominance rule of the all-sector secrecy cell): their
        # activity code is blanked (code 0 = "") and so is the band of the units no indicator
        # reads. The aggregate then grows with industry only, not with the 44M rows.
        naf = self._lut_naf[flat]
        tranche = np.where(ind | ((etat == 0) & (emp == 0)), tranche, d["tranche"].values.index(""))
        self._check_layout()
        self.counter.add(self.layout.encode([com, nom, naf, etat, emp, tranche]))
        mx = pc.max(col("dateDernierTraitementEtablissement")).as_py()
        if mx and (self.as_of is None or mx > self.as_of):
            self.as_of = mx
        return ind

    def _string_ranks(self, norm: np.ndarray, known: np.ndarray) -> tuple[list, list]:
        """Every dictionary ranked in string order (so that one integer sort orders the rows):
        the sorted values and the rank of each dictionary code, per component."""
        d = self.dicts
        codgeo_values = sorted(set(norm[known]))
        codgeo_rank = np.full(len(norm), -1, dtype=np.int32)
        codgeo_rank[known] = np.searchsorted(np.array(codgeo_values, dtype=object), norm[known]).astype(np.int32)
        sorted_values, ranks = [codgeo_values], [codgeo_rank]
        for name in ("nomenclature", "naf", "etat", "employer", "tranche"):
            vals = d[name].values
            order = sorted(range(len(vals)), key=vals.__getitem__)
            rank = np.empty(len(vals), dtype=np.int32)
            rank[order] = np.arange(len(vals), dtype=np.int32)
            sorted_values.append([vals[i] for i in order])
            ranks.append(rank)
        return sorted_values, ranks

    def finish(self, known_communes: set[str], report: StockParseReport) -> pd.DataFrame:
        """Integer keys -> the output DataFrame (communes normalised on the dictionary,
        sorted like the strings, strings materialised once per column)."""
        self.counter.flush()
        keys, counts = self.counter.keys, self.counter.counts
        self.counter = _Counter()
        lay, d = self.layout, self.dicts
        raw = pd.Series(d["commune"].values, dtype="str")
        norm = codes.arm_to_commune(codes.normalise_commune(raw)).to_numpy(dtype=object)
        foreign = raw.str.strip().eq("").to_numpy()
        known = np.fromiter((v in known_communes for v in norm), dtype=bool, count=len(norm)) & ~foreign
        com = lay.decode(keys, 0)
        g_foreign = foreign[com]
        report.foreign_rows = int(counts[g_foreign].sum())
        unk = ~g_foreign & ~known[com]
        if unk.any():
            s = pd.Series(counts[unk].astype(np.int64)).groupby(norm[com[unk]]).sum()
            report.unknown_communes = {str(k): int(v) for k, v in s.items()}
        keep = known[com]
        del g_foreign, unk
        keys, counts, com = keys[keep], counts[keep], com[keep]
        del keep
        sorted_values, ranks = self._string_ranks(norm, known)
        out = _Layout([max(1, (max(len(v), 1) - 1).bit_length()) for v in sorted_values])
        final = np.zeros(len(keys), dtype=np.uint64)
        tmp = np.empty(len(keys), dtype=np.uint64)
        for i in range(len(_COMPONENTS)):
            tmp[:] = ranks[i][com] if i == 0 else ranks[i][lay.decode(keys, i)]
            tmp <<= np.uint64(out.shifts[i])
            final |= tmp
        del keys, com, tmp
        order = np.argsort(final)
        final = final[order]
        counts = counts[order]
        del order
        starts = _runs(final)  # arrondissements of one commune merge here
        if len(final):
            final, counts = final[starts], np.add.reduceat(counts, starts, dtype=np.int64)
        del starts
        # materialise the strings, one column at a time
        names = ["codgeo", "nomenclature", "naf", "etat", "employer", "tranche"]
        columns: dict[str, object] = {}
        nom_rank = naf_rank = None
        for i, name in enumerate(names):
            c = out.decode(final, i)
            columns[name] = _strings(sorted_values[i], c)
            if name == "nomenclature":
                nom_rank = c
            elif name == "naf":
                naf_rank = c
                div_values = [v[:2] for v in sorted_values[i]]
                columns["division"] = _strings(div_values, c)
        del final
        nom_rev2 = np.array([v == "NAFRev2" for v in sorted_values[1]], dtype=bool)
        div_ind = np.array([v in self._industrial_divisions for v in div_values], dtype=bool)
        columns["is_industrial"] = nom_rev2[nom_rank] & div_ind[naf_rank]
        columns["n_etab"] = counts.astype(np.int64)
        columns["codgeo"] = pd.arrays.ArrowStringArray(columns["codgeo"]._pa_array)  # "string" (pd.NA) dtype
        order_cols = ["codgeo", "nomenclature", "naf", "division", "is_industrial", "etat", "employer", "tranche",
                      "n_etab"]
        return pd.DataFrame({c: columns.pop(c) for c in order_cols}, copy=False)


def _strings(values: list[str], idx: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``values[idx]`` as a pandas ``str`` (Arrow-backed) array."""
    return pa.array(values, pa.large_string()).take(pa.array(idx)).to_pandas().array


class _ExtractWriter:
    """Industrial establishments to Parquet, in row groups of ~500k rows, atomically."""

    def __init__(self, dest: Path, stack: contextlib.ExitStack):
        from .. import storage

        self.dest = Path(dest)
        self.tmp = stack.enter_context(storage.atomic_path(self.dest))
        self.writer = None
        self.parts: list[pa.Table] = []
        self.rows = 0
        self.written = 0

    def add(self, table: pa.Table, mask: np.ndarray) -> None:
        cols = [c for c in INDUSTRIAL_EXTRACT_COLUMNS if c in table.schema.names]
        self.parts.append(table.select(cols).filter(pa.array(mask)))
        self.rows += int(mask.sum())
        if self.rows >= _EXTRACT_ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        import pyarrow.parquet as pq

        if not self.parts:
            return
        t = pa.concat_tables(self.parts).combine_chunks()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, t.schema, compression="zstd", compression_level=1)
        self.writer.write_table(t)
        self.written += t.num_rows
        self.parts, self.rows = [], 0

    def close(self) -> None:
        import pyarrow.parquet as pq

        self.flush()
        if self.writer is None:  # no industrial row at all: still an (empty) typed file
            schema = pa.schema([(c, pa.string()) for c in INDUSTRIAL_EXTRACT_COLUMNS])
            self.writer = pq.ParquetWriter(self.tmp, schema)
        self.writer.close()


def _stream(path: Path, agg, extract, report: StockParseReport, on_batch, progress_every: int, t0: float) -> None:
    """Feed the stock to the aggregator (and the industrial extract) in groups of ~100k rows,
    logging progress every ``progress_every`` rows."""
    group: list[pa.RecordBatch] = []
    group_rows = 0
    next_log = progress_every

    def process() -> None:
        table = pa.Table.from_batches(group)
        ind = agg.add(table)
        if extract is not None:
            extract.add(table, ind)
        group.clear()

    for batch in iter_stock_batches(path):
        if report.rows == 0:
            report.columns_read = list(batch.schema.names)
        if on_batch is not None:
            on_batch(batch)
        group.append(batch)
        group_rows += batch.num_rows
        report.rows += batch.num_rows
        if group_rows >= _GROUP_ROWS:  # amortise per-call costs over ~100k rows
            process()
            group_rows = 0
        if report.rows >= next_log:
            el = time.perf_counter() - t0
            log.info("%s: %s rows parsed, %.0f rows/s, peak RSS %s MB", path.name, f"{report.rows:,}",
                     report.rows / max(el, 1e-9), _peak_rss_mb())
            next_log += progress_every
    if group:
        process()


def aggregate_stock(
    path: Path,
    known_communes: set[str],
    progress_every: int = 5_000_000,
    industrial_extract: Path | None = None,
    on_batch=None,
) -> tuple[pd.DataFrame, StockParseReport]:
    """Stream the stock and return establishment counts per commune x activity x state.

    Output columns: codgeo, nomenclature, naf (NAF rév. 2 sous-classe), division,
    is_industrial, etat, employer, tranche, n_etab; sorted by those keys. ``naf`` and
    ``division`` are filled for industrial rows only; the size band for industrial rows and for
    the active employers (A, O) of every sector; other sectors are counted by commune x
    nomenclature x state x employer (x band when active employer). The aggregate is thus
    bounded by the number of communes x industrial activities, not by the stock: creation
    and closure dates stay at establishment level, in the industrial extract. Rows abroad (empty
    commune) are counted in ``report.foreign_rows``; commune codes outside the COG vintage
    in ``report.unknown_communes``; neither is in the output.

    ``industrial_extract``: if given, the establishment-level rows of industrial units
    (NAF rév. 2 divisions 05-39, ~10 % of the stock) are written there as Parquet, for the
    indicators that need single establishments (flows, size bands, dominance).
    ``on_batch(batch)``: called with every raw RecordBatch (file-level validation on the
    stream, e.g. SIRET format and uniqueness), before aggregation.
    """
    path = Path(path)
    report = StockParseReport(file=path.name)
    t0 = time.perf_counter()
    agg = _StockAggregator(path.name)
    with contextlib.ExitStack() as stack:
        extract = _ExtractWriter(industrial_extract, stack) if industrial_extract is not None else None
        _stream(path, agg, extract, report, on_batch, progress_every, t0)
        if report.rows == 0:
            raise SireneFileError(f"{path.name}: no data rows (header only or empty file)")
        if extract is not None:
            extract.close()
    el = time.perf_counter() - t0
    log.info("%s: streamed %s rows in %.1f s (%.0f rows/s), %s distinct groups, peak RSS %s MB", path.name,
             f"{report.rows:,}", el, report.rows / max(el, 1e-9), f"{agg.counter.size():,}", _peak_rss_mb())
    pa.default_memory_pool().release_unused()  # give the CSV buffers back before the output is built
    df = agg.finish(known_communes, report)
    report.seconds = time.perf_counter() - t0
    report.as_of = agg.as_of[:10] if agg.as_of else None
    if report.unknown_communes:
        log.warning(
            "%s: %d establishment(s) in %d commune code(s) outside the COG vintage (kept in the report, not mapped): %s",
            path.name, sum(report.unknown_communes.values()), len(report.unknown_communes),
            list(report.unknown_communes)[:10],
        )
    log.info(
        "%s: %s rows in %.1f s (%.0f rows/s), as-of %s, %d aggregate rows%s",
        path.name, f"{report.rows:,}", report.seconds, report.rows / max(report.seconds, 1e-9), report.as_of, len(df),
        f", {extract.written:,} industrial establishments extracted" if extract is not None else "",
    )
    return df, report
