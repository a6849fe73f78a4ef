"""File-level checks on the SIRENE stock *stream* (44M rows nationally: never in pandas).

Pass ``checker.update`` as ``on_batch`` to
:func:`territoires_industrie.sources.sirene.aggregate_stock`; it sees every raw pyarrow
RecordBatch (needed columns, as strings) before aggregation. ``checker.result()`` is a
JSON-serialisable dict that the ``sirene_stock`` gate takes as ``context["stream"]``.

Checks (vectorised with ``pyarrow.compute``):

| check | rule |
|---|---|
| ``siret_format`` | ``siret`` is 14 digits |
| ``siret_unique`` | no SIRET appears twice in the stock |
| ``commune_format`` | non-empty ``codeCommuneEtablissement`` matches ``^(\\d{5}|2[AB]\\d{3})$`` (``[ND]`` = not diffusible, counted apart) |
| ``naf_format`` | NAFRev2 rows: ``activitePrincipaleEtablissement`` matches ``^\\d{2}\\.\\d{2}[A-Z]$`` |
| ``naf_in_table`` | NAFRev2 rows with a well-formed code: the code exists in the NAF rév. 2 table (732) |
| ``tranche_domain`` | ``trancheEffectifsEtablissement`` is NN, one of the 15 INSEE bands, or empty |
| ``etat_domain`` | ``etatAdministratifEtablissement`` is A or F |

Memory bound: the uniqueness check keeps every well-formed SIRET as an int64, i.e.
**8 bytes per row** (44M rows: 352 MB) plus one batch. The per-batch chunks live in
anonymous memory maps, moved one by one into a single array at the end (so the peak does
not double: measured +9 MB over the chunks for 16M rows), which is sorted in place; a
boolean mask of 1 byte per row is added then (44 MB). Everything else is O(batch). Pass
``check_duplicates=False`` to drop that cost on a very small worker.
Offending rows are sampled (``sample_size`` per check, with their data row number: file
line = row + 1) and kept for the quarantine up to ``quarantine_cap`` rows in all.
"""

from __future__ import annotations

import logging
import time

import numpy as np

log = logging.getLogger(__name__)

TRANCHE_VALUES = ("NN", "00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41", "42", "51", "52", "53", "")
COMMUNE_REGEX = r"^(\d{5}|2[AB]\d{3})$"
NAF_REGEX = r"^\d{2}\.\d{2}[A-Z]$"

CHECKS = {
    # name: (expectation, column, description)
    "siret_format": ("expect_column_values_to_match_regex", "siret", "SIRET is 14 digits"),
    "siret_unique": ("expect_column_values_to_be_unique", "siret", "each SIRET appears once in the stock"),
    "commune_format": ("expect_column_values_to_match_regex", "codeCommuneEtablissement",
                       "a non-empty commune code is 5 characters (digits, or 2A/2B + 3 digits)"),
    "naf_format": ("expect_column_values_to_match_regex", "activitePrincipaleEtablissement",
                   "NAFRev2 rows carry a sous-classe like 25.62B"),
    "naf_in_table": ("expect_column_values_to_be_in_reference_set", "activitePrincipaleEtablissement",
                     "NAFRev2 codes exist in the NAF rév. 2 table"),
    "tranche_domain": ("expect_column_values_to_be_in_set", "trancheEffectifsEtablissement",
                       "size band is NN, one of the 15 INSEE bands, or empty"),
    "etat_domain": ("expect_column_values_to_be_in_set", "etatAdministratifEtablissement",
                    "administrative state is A or F"),
}


def _os_backed(values) -> np.ndarray:
    """Copy int64 values into an anonymous memory map: freeing the chunk (in ``result()``)
    returns its pages to the OS at once, so the final contiguous array does not double the
    peak (the malloc heap would keep freed 8 MB chunks)."""
    import mmap

    n = len(values)
    buf = mmap.mmap(-1, max(n, 1) * 8)
    out = np.frombuffer(buf, dtype=np.int64, count=n)
    out[:] = np.asarray(values)
    return out


class SireneStreamChecker:
    """Accumulates file-level checks over the batches of one SIRENE stock file."""

    def __init__(self, sample_size: int = 20, quarantine_cap: int = 10_000, check_duplicates: bool = True,
                 naf_codes=None, severity: dict | None = None):
        import pyarrow as pa

        if naf_codes is None:
            from ..nomenclature import naf_sous_classes

            naf_codes = naf_sous_classes()["NIV5"].dropna().astype(str).tolist()
        self._naf = pa.array(sorted(set(naf_codes)), pa.string())
        self._tranches = pa.array(TRANCHE_VALUES, pa.string())
        self._etats = pa.array(["A", "F"], pa.string())
        self.sample_size = sample_size
        self.quarantine_cap = quarantine_cap
        self.check_duplicates = check_duplicates
        self.severity = {k: "hard" for k in CHECKS} | (severity or {})
        self.rows = 0
        self.masked_communes = 0
        self.foreign_rows = 0
        self.nafrev2_rows = 0
        self.counts = {k: 0 for k in CHECKS}
        self.samples: dict[str, list] = {k: [] for k in CHECKS}
        self.quarantine: list[dict] = []
        self._sirets: list[np.ndarray] = []
        self._seconds = 0.0
        self._done = None

    # ------------------------------------------------------------------ per batch
    def _record(self, check: str, mask, batch, value_col: str) -> None:
        import pyarrow.compute as pc

        n = int(pc.sum(mask).as_py() or 0) if len(mask) else 0
        if not n:
            return
        self.counts[check] += n
        want = max(self.sample_size - len(self.samples[check]), 0)
        room = max(self.quarantine_cap - len(self.quarantine), 0)
        take = max(want, room)
        if not take:
            return
        idx = pc.indices_nonzero(mask).slice(0, take)
        values = pc.take(batch.column(value_col), idx).to_pylist()
        sirets = pc.take(batch.column("siret"), idx).to_pylist() if "siret" in batch.schema.names else [None] * len(values)
        expectation, column, description = CHECKS[check]
        for i, v, s in zip(idx.to_pylist(), values, sirets):
            row = self.rows + i + 1
            if len(self.samples[check]) < self.sample_size:
                self.samples[check].append({"row": row, "siret": s, "value": v})
            if len(self.quarantine) < self.quarantine_cap:
                self.quarantine.append({"row": row, "siret": s, "column": column, "value": v, "expectation": expectation,
                                        "severity": self.severity[check], "check": check,
                                        "reason": f"{description} [{expectation} on {column}, file data row {row}]"})

    def update(self, batch) -> None:
        """``on_batch`` hook: check one RecordBatch (all columns as strings)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        t = time.perf_counter()
        names = set(batch.schema.names)
        if "siret" in names:
            siret = batch.column("siret")
            ok = pc.and_(pc.equal(pc.utf8_length(siret), 14), pc.ascii_is_decimal(siret))
            ok = pc.fill_null(ok, False)
            self._record("siret_format", pc.invert(ok), batch, "siret")
            if self.check_duplicates:
                valid = pc.filter(siret, ok)
                if len(valid):
                    self._sirets.append(_os_backed(pc.cast(valid, pa.int64())))
        if "codeCommuneEtablissement" in names:
            com = pc.fill_null(batch.column("codeCommuneEtablissement"), "")
            empty = pc.equal(com, "")
            masked = pc.equal(com, "[ND]")
            self.foreign_rows += int(pc.sum(empty).as_py() or 0)
            self.masked_communes += int(pc.sum(masked).as_py() or 0)
            bad = pc.and_(pc.invert(pc.or_(empty, masked)), pc.invert(pc.match_substring_regex(com, COMMUNE_REGEX)))
            self._record("commune_format", bad, batch, "codeCommuneEtablissement")
        if {"activitePrincipaleEtablissement", "nomenclatureActivitePrincipaleEtablissement"} <= names:
            naf = pc.fill_null(batch.column("activitePrincipaleEtablissement"), "")
            rev2 = pc.fill_null(pc.equal(batch.column("nomenclatureActivitePrincipaleEtablissement"), "NAFRev2"), False)
            self.nafrev2_rows += int(pc.sum(rev2).as_py() or 0)
            in_table = pc.is_in(naf, value_set=self._naf)
            suspicious = pc.and_(rev2, pc.invert(in_table))  # usually none: regex only on these
            if pc.any(suspicious).as_py():
                fmt_ok = pc.match_substring_regex(naf, NAF_REGEX)
                self._record("naf_format", pc.and_(suspicious, pc.invert(fmt_ok)), batch,
                             "activitePrincipaleEtablissement")
                self._record("naf_in_table", pc.and_(suspicious, fmt_ok), batch, "activitePrincipaleEtablissement")
        if "trancheEffectifsEtablissement" in names:
            tr = pc.fill_null(batch.column("trancheEffectifsEtablissement"), "")
            self._record("tranche_domain", pc.invert(pc.is_in(tr, value_set=self._tranches)), batch,
                         "trancheEffectifsEtablissement")
        if "etatAdministratifEtablissement" in names:
            et = pc.fill_null(batch.column("etatAdministratifEtablissement"), "")
            self._record("etat_domain", pc.invert(pc.is_in(et, value_set=self._etats)), batch,
                         "etatAdministratifEtablissement")
        self.rows += batch.num_rows
        self._seconds += time.perf_counter() - t

    __call__ = update

    # ------------------------------------------------------------------ at the end
    def _duplicates(self) -> tuple[int, list[dict]]:
        if not self.check_duplicates or not self._sirets:
            return 0, []
        total = sum(len(a) for a in self._sirets)
        arr = np.empty(total, dtype=np.int64)
        pos = 0
        self._sirets.reverse()
        while self._sirets:  # move chunk by chunk: peak = all SIRETs + one chunk
            a = self._sirets.pop()
            arr[pos: pos + len(a)] = a
            pos += len(a)
        arr.sort()
        dup = arr[1:] == arr[:-1]
        n_dup_rows = int(dup.sum())
        sample = []
        if n_dup_rows:
            values, counts = np.unique(arr[1:][dup], return_counts=True)
            for v, c in zip(values[: max(self.sample_size, 0)], counts[: max(self.sample_size, 0)]):
                sample.append({"row": None, "siret": f"{int(v):014d}", "value": f"{int(v):014d}", "occurrences": int(c) + 1})
            for v, c in zip(values, counts):
                if len(self.quarantine) >= self.quarantine_cap:
                    break
                s = f"{int(v):014d}"
                expectation, column, description = CHECKS["siret_unique"]
                self.quarantine.append({"row": None, "siret": s, "column": column, "value": s,
                                        "expectation": expectation, "severity": self.severity["siret_unique"],
                                        "check": "siret_unique",
                                        "reason": f"{description} [{expectation} on {column}: {int(c) + 1} rows]"})
        del arr, dup
        return n_dup_rows, sample

    def result(self) -> dict:
        """JSON-serialisable summary; computed once (the SIRET buffer is released)."""
        if self._done is not None:
            return self._done
        t = time.perf_counter()
        n_dup, dup_sample = self._duplicates()
        self.counts["siret_unique"] = n_dup
        self.samples["siret_unique"] = dup_sample
        self._seconds += time.perf_counter() - t
        checks = []
        for name, (expectation, column, description) in CHECKS.items():
            if name == "siret_unique" and not self.check_duplicates:
                continue
            total = self.nafrev2_rows if name.startswith("naf_") else self.rows
            n = self.counts[name]
            checks.append({
                "expectation": expectation, "column": column, "condition": "nomenclature == 'NAFRev2'"
                if name.startswith("naf_") else None, "severity": self.severity[name], "kind": "keys",
                "description": f"{description} (SIRENE file, checked on the stream)", "success": n == 0,
                "engine": "stream", "check": name, "params": {}, "element_count": total, "unexpected_count": n,
                "unexpected_percent": round(100.0 * n / total, 6) if total else None, "missing_count": None,
                "observed_value": None, "sample": [s["value"] for s in self.samples[name]],
                "sample_counts": None, "sample_rows": [s["row"] for s in self.samples[name]],
                "sample_detail": self.samples[name], "missing_values": None, "error": None,
            })
        self._done = {
            "rows": self.rows, "seconds": round(self._seconds, 3),
            "rows_per_second": round(self.rows / self._seconds) if self._seconds else None,
            "foreign_rows": self.foreign_rows, "masked_commune_rows": self.masked_communes,
            "nafrev2_rows": self.nafrev2_rows, "duplicate_check": self.check_duplicates,
            "memory_bound_bytes": 8 * self.rows if self.check_duplicates else 0,
            "counts": dict(self.counts), "checks": checks, "quarantine": self.quarantine,
        }
        bad = {k: v for k, v in self.counts.items() if v}
        log.info("SIRENE stream checks: %s rows in %.1f s of checking (%s rows/s)%s", f"{self.rows:,}", self._seconds,
                 f"{self._done['rows_per_second']:,}" if self._done["rows_per_second"] else "-",
                 f"; offending rows: {bad}" if bad else "; no offending row")
        return self._done
