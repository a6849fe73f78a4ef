"""API Sirene 3.11 (``TI_URL_INSEE_API``, default ``https://api.insee.fr/api-sirene/3.11``):
incremental updates since the stock's as-of, and single-territory pulls.

- key in the header ``X-INSEE-Api-Key-Integration`` (env ``TI_INSEE_API_KEY`` or Airflow
  connection ``insee_api``, password field); never logged;
- ``GET /siret?q=...&nombre=1000&curseur=*``, then ``curseur=<header.curseurSuivant>`` until
  ``header.curseur == header.curseurSuivant`` (or an empty page); ``nombre`` <= 1000;
- historised variables (état, activité, caractère employeur, enseignes, dénomination usuelle)
  are wrapped in ``periode(...)`` in ``q``;
- 30 requests/minute (client-side limiter in :mod:`territoires_industrie.http`; the
  ``ti_sirene_updates`` DAG also runs in the Airflow pool ``insee_api``);
- every page is written to disk as it comes (``page-000001.json``...) with a cursor state file
  (``cursor_state.json``) updated after each page: an interrupted pull resumes at the last
  completed page, and a retried page overwrites its file (never appends);
- the output is flattened to the ``StockEtablissement`` column names (current values from the
  period whose ``dateFin`` is null) and written as ``StockEtablissement_updates.zip`` (member
  ``StockEtablissement_utf8.csv``), readable by the stock parser.

Watermark: the updates cover (stock as-of, now]. The query is
``dateDernierTraitementEtablissement:[<watermark> TO *]`` (inclusive). The watermark is the
stock's as-of date (so that whole day is re-read) or, once update batches have landed, the
latest treatment time of the last batch; a pull that only returns records at or before the
watermark lands nothing. Rows are de-duplicated by SIRET, the latest treatment winning.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..http import Credential, UpstreamFormatError, decode_json, insee_credential
from ..schemas import SIRENE_STOCK_ALL_COLUMNS

log = logging.getLogger(__name__)

NOMBRE_MAX = 1000
STOCK_MEMBER = "StockEtablissement_utf8.csv"
FLAT_NAME = "StockEtablissement_updates.zip"
PAGES_NAME = "api_pages.zip"
#: historised establishment variables: must be wrapped in periode(...) in q
HISTORISED = frozenset({
    "denominationUsuelleEtablissement", "enseigne1Etablissement", "enseigne2Etablissement", "enseigne3Etablissement",
    "activitePrincipaleEtablissement", "etatAdministratifEtablissement", "nomenclatureActivitePrincipaleEtablissement",
    "caractereEmployeurEtablissement",
})
INDUSTRIAL_PREFIXES = tuple(f"{d:02d}" for d in range(5, 40))
_COLS = tuple(SIRENE_STOCK_ALL_COLUMNS)
_COLSET = frozenset(_COLS)
_NESTED_ADDRESS = ("adresseEtablissement", "adresse2Etablissement")
_SILENT = frozenset({"uniteLegale", "periodesEtablissement", "score"})


# --- q= builder --------------------------------------------------------------------------------
def term(variable: str, value: str) -> str:
    """``variable:value``; historised variables are wrapped in ``periode(...)``."""
    t = f"{variable}:{value}"
    return f"periode({t})" if variable in HISTORISED else t


def periode(*terms: str, op: str = "AND") -> str:
    """Several historised conditions that must hold on the same period."""
    return f"periode({f' {op} '.join(terms)})"


def any_of(variable: str, values) -> str:
    vals = list(values)
    inner = " OR ".join(f"{variable}:{v}" for v in vals)
    return f"({inner})" if len(vals) > 1 else inner


def q_updated_since(since: str) -> str:
    """Establishments whose last treatment is at or after ``since`` (``YYYY-MM-DD``,
    ``YYYY-MM-DDTHH:MM:SS`` or, as API Sirene 3.11 returns it, ``YYYY-MM-DDTHH:MM:SS.MMM``).

    The query is sent at the second (the documented date-time form of the ``q`` syntax): the
    range is inclusive, so cutting the milliseconds can only bring boundary records back, which
    the caller recognises (``max treatment <= watermark``) and de-duplicates."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2})?)(\.\d{1,6})?", since or "")
    if not m or (m.group(2) and "T" not in m.group(1)):
        raise ValueError(f"watermark must be a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM:SS[.MMM], got {since!r}")
    return f"dateDernierTraitementEtablissement:[{m.group(1)} TO *]"


def q_territory(communes: list[str], active_only: bool = True, industrial_only: bool = True) -> str:
    """Establishments of some communes, optionally active and industrial (NAF rév. 2 divisions 05-39)."""
    if not communes:
        raise ValueError("no commune code given")
    parts = [any_of("codeCommuneEtablissement", communes)]
    hist = []
    if active_only:
        hist.append("etatAdministratifEtablissement:A")
    if industrial_only:
        hist.append(any_of("activitePrincipaleEtablissement", [f"{p}*" for p in INDUSTRIAL_PREFIXES]))
    if hist:
        parts.append(periode(*hist))
    return " AND ".join(parts)


# --- flattening --------------------------------------------------------------------------------
def _s(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def current_period(periods: list[dict]) -> dict:
    for p in periods or []:
        if p.get("dateFin") in (None, ""):
            return p
    return (periods or [{}])[0]


def flatten(etab: dict, unknown: set) -> dict:
    """One API establishment -> one row with the 54 StockEtablissement columns (strings)."""
    row = dict.fromkeys(_COLS, "")
    for k, v in etab.items():
        if k in _COLSET:
            row[k] = _s(v)
        elif k in _NESTED_ADDRESS and isinstance(v, dict):
            for kk, vv in v.items():
                if kk in _COLSET:
                    row[kk] = _s(vv)
                else:
                    unknown.add(f"{k}.{kk}")
        elif k not in _SILENT:
            unknown.add(k)
    for kk, vv in current_period(etab.get("periodesEtablissement") or []).items():
        if kk in _COLSET:
            row[kk] = _s(vv)
        elif kk != "dateFin" and not kk.startswith("changement"):
            unknown.add(f"periodesEtablissement.{kk}")
    return row


def _zipinfo(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def write_flat_zip(pages: list[Path], dest: Path) -> tuple[int, str | None]:
    """Stream the pages into ``dest`` (zip, member StockEtablissement_utf8.csv), one page at a time.

    Returns (rows, max dateDernierTraitementEtablissement). Atomic: temp + rename."""
    from ..storage import atomic_path

    rows, max_ddt, unknown = 0, None, set()
    seen: set[str] = set()
    with atomic_path(Path(dest)) as tmp:
        with zipfile.ZipFile(tmp, "w") as zf, zf.open(_zipinfo(STOCK_MEMBER), "w", force_zip64=True) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            w = csv.writer(text, lineterminator="\n")
            w.writerow(_COLS)
            for p in pages:
                data = json.loads(Path(p).read_bytes().decode("utf-8-sig"))
                for e in data.get("etablissements") or []:
                    row = flatten(e, unknown)
                    if row["siret"] in seen:  # the same SIRET in two chunks of a territory pull
                        continue
                    seen.add(row["siret"])
                    w.writerow([row[c] for c in _COLS])
                    rows += 1
                    d = row["dateDernierTraitementEtablissement"]
                    if d and (max_ddt is None or d > max_ddt):
                        max_ddt = d
            text.flush()
            text.detach()
    if unknown:
        log.warning("API Sirene: %d unknown field(s) ignored (not StockEtablissement columns): %s", len(unknown),
                    sorted(unknown)[:20])
    return rows, max_ddt


def zip_pages(pages: list[Path], dest: Path) -> Path:
    from ..storage import atomic_path

    with atomic_path(Path(dest)) as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            for p in pages:
                zf.writestr(_zipinfo(f"{Path(p).parent.name}/{Path(p).name}"), Path(p).read_bytes())
    return Path(dest)


# --- paging -------------------------------------------------------------------------------------
@dataclass
class PullResult:
    q: str
    pages: list = field(default_factory=list)
    rows: int = 0
    total: int | None = None
    resumed_at_page: int = 0
    requests: int = 0
    seconds: float = 0.0


def _check_no_result(body: bytes, url: str) -> None:
    """A 404 means "no establishment matches" only when it is the API's own JSON answer
    (``{"header": {"statut": 404, "message": "Aucun élément trouvé ..."}}``). Any other 404 (a
    wrong base URL or path, a gateway page) is an error naming the URL, never an empty result."""
    try:
        data = json.loads(body.decode("utf-8"))
        ok = isinstance(data, dict) and isinstance(data.get("header"), dict) and \
            int(data["header"].get("statut", 0)) == 404
    except (ValueError, UnicodeDecodeError, TypeError):
        ok = False
    if not ok:
        from ..http import HttpError

        raise HttpError(status=404, url=url, message=f"API Sirene: HTTP 404 from {url} is not the API's 'no result' answer (wrong base URL or path? "
                        f"check TI_URL_INSEE_API); body starts {body[:80]!r}")


class SireneApi:
    def __init__(self, client, key: str | None = None, credential: Credential | None = None):
        self.client = client
        self.credential = credential or insee_credential(key)

    def search_siret(self, q: str, out_dir: Path, *, nombre: int = NOMBRE_MAX, champs: list[str] | None = None,
                     date: str | None = None, max_pages: int = 100_000) -> PullResult:
        """Cursor-page ``/siret?q=`` into ``out_dir`` (resumable; see module doc)."""
        from ..storage import atomic_path, write_json

        if not 0 < int(nombre) <= NOMBRE_MAX:
            raise ValueError(f"nombre must be in 1..{NOMBRE_MAX} (API Sirene limit), got {nombre}")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        query = {"q": q, "nombre": int(nombre), "champs": ",".join(champs) if champs else None, "date": date}
        state_file = out_dir / "cursor_state.json"
        state, res = _resume(out_dir, state_file, query, q)
        if state and state.get("done"):
            return res
        cursor = state["next_cursor"] if state else "*"
        page_no = state["pages"] if state else 0
        url = self.client.url("insee_api", "siret")
        t0 = time.perf_counter()
        while page_no < max_pages:
            params = {k: v for k, v in {"q": q, "nombre": int(nombre), "curseur": cursor, "champs": query["champs"],
                                        "date": date}.items() if v is not None}
            status, body, _ = self.client.get_bytes(url, params=params, credential=self.credential,
                                                    headers={"Accept": "application/json"}, allow_status=(404,))
            res.requests += 1
            label = f"API Sirene /siret page {page_no + 1}"
            if status == 404:  # "no result" for a search (INSEE codes): nothing, or nothing more
                _check_no_result(body, url)
                write_json(state_file, {"query": query, "pages": page_no, "next_cursor": cursor, "rows": res.rows,
                                        "total": res.total if page_no else 0, "done": True})
                if page_no == 0:
                    res.total = 0
                    log.info("API Sirene: no establishment matches q=%s", q)
                break
            data = decode_json(body, label)
            header = data.get("header") if isinstance(data, dict) else None
            etabs = data.get("etablissements") if isinstance(data, dict) else None
            if not isinstance(header, dict) or "curseurSuivant" not in header or not isinstance(etabs, list):
                raise UpstreamFormatError(f"{label}: response lacks header.curseurSuivant or the 'etablissements' list")
            page_no += 1
            page = out_dir / f"page-{page_no:06d}.json"
            with atomic_path(page) as tmp:  # a retried page overwrites its own file
                tmp.write_bytes(body)
            res.pages.append(page)
            res.rows += len(etabs)
            res.total = header.get("total", res.total)
            nxt = header["curseurSuivant"]
            done = header.get("curseur") == nxt or not etabs
            write_json(state_file, {"query": query, "pages": page_no, "next_cursor": nxt, "rows": res.rows,
                                    "total": res.total, "done": done})
            el = time.perf_counter() - t0
            rate = (res.rows - (state or {}).get("rows", 0)) / max(el, 1e-9)
            eta = (res.total - res.rows) / rate if res.total and rate > 0 else None
            log.info("API Sirene: page %d, %d establishments%s, %.0f rows/s%s", page_no, res.rows,
                     f" of {res.total}" if res.total is not None else "", rate,
                     f", ETA {eta:.0f} s" if eta is not None and not done else "")
            if done:
                break
            cursor = nxt
        res.seconds = time.perf_counter() - t0
        return res


def _resume(out_dir: Path, state_file: Path, query: dict, q: str) -> tuple[dict | None, PullResult]:
    """The saved cursor state of an interrupted pull of the same query (pages kept), else a
    fresh start (pages of another query removed)."""
    state = json.loads(state_file.read_text()) if state_file.exists() else None
    if state and state.get("query") != query:
        log.info("API Sirene: %s holds another query's pages, starting afresh", out_dir)
        for f in out_dir.glob("page-*.json"):
            f.unlink()
        state = None
    res = PullResult(q=q)
    if state:
        res.rows, res.total, res.resumed_at_page = state["rows"], state.get("total"), state["pages"]
        res.pages = [out_dir / f"page-{i:06d}.json" for i in range(1, state["pages"] + 1)]
        missing = [p for p in res.pages if not p.exists()]
        if missing:
            raise FileNotFoundError(f"API Sirene resume: page file(s) {[m.name for m in missing]} missing in {out_dir}")
        if state.get("done"):
            log.info("API Sirene: pull already complete in %s (%d pages, %d rows)", out_dir, state["pages"], res.rows)
        else:
            log.info("API Sirene: resuming after page %d (%d rows so far)", state["pages"], res.rows)
    return state, res


# --- watermark and landing ---------------------------------------------------------------------
SOURCE = "sirene_updates"


def _safe(ts: str) -> str:
    return re.sub(r"[^0-9A-Za-z-]", "", ts)[:17]


def landed_windows(settings) -> list[dict]:
    """State entries of the landed update batches: window_from, window_to, path, vintage."""
    from ..landing import read_state

    return [v for k, v in read_state(settings, SOURCE).items() if k.startswith("since_") and v.get("window_to")]


def watermark(settings, stock_as_of: str) -> str:
    """Where to ask for updates from: the stock's as-of (a date) or, if later, the latest treatment
    time of the last landed batch (a date-time; ISO strings compare in time order)."""
    ends = [w["window_to"] for w in landed_windows(settings) if w["window_to"] >= stock_as_of]
    return max([stock_as_of, *ends])


def acquire_updates(client, settings, stock_as_of: str | None = None, since: str | None = None, key: str | None = None,
                    nombre: int = NOMBRE_MAX, **_):
    """Pull the establishments treated since the watermark and land them in
    ``raw/sirene_updates/<since>_<max treatment time>/`` (flattened zip + the raw pages).

    ``changed`` is False (nothing landed) when the API has no update since the watermark."""
    from ..config import insee_api_key
    from ..landing import work_dir

    if since is None:
        if not stock_as_of:
            raise ValueError("sirene_updates needs the stock as-of (stock_as_of=) or an explicit since=")
        since = watermark(settings, stock_as_of)
    api = SireneApi(client, key or insee_api_key())
    q = q_updated_since(since)
    key_name = f"since_{_safe(since)}"
    work = work_dir(settings, SOURCE, key_name)
    res = api.search_siret(q, work / "pages", nombre=nombre)
    return land_pages(settings, res.pages, since, work, q=q, url=api.client.url("insee_api", "siret"),
                      total=res.total)


def land_pages(settings, pages: list[Path], since: str, work: Path, *, q: str, url: str, total: int | None = None):
    """Land the pages of one updates pull (the records treated since ``since``) in
    ``raw/sirene_updates/<since>_<max treatment time>/``: the flattened StockEtablissement
    layout and the raw pages. Shared by the API pull and the SYNTHETIC sample feed.
    ``changed`` is False (nothing landed) when no record is newer than ``since``."""
    from ..landing import Acquired, land_generated

    key_name = f"since_{_safe(since)}"
    Path(work).mkdir(parents=True, exist_ok=True)
    flat = work / FLAT_NAME
    rows, max_ddt = write_flat_zip(pages, flat) if pages else (0, None)
    if not rows or max_ddt is None or max_ddt <= since:
        # nothing, or only the boundary records of the last batch (the range is inclusive)
        log.info("API Sirene: no establishment treated after %s (%d boundary record(s)): nothing to land",
                 since, rows)
        shutil.rmtree(work, ignore_errors=True)
        return Acquired(SOURCE, work, since, False, {"q": q, "rows": 0, "window_from": since})
    pages_zip = zip_pages(pages, work / PAGES_NAME)
    vintage = f"{_safe(since)}_{_safe(max_ddt)}"
    window = {"window_from": since, "window_to": max_ddt or since, "q": q}
    entries = {FLAT_NAME: {"url": url, "rows": rows, "api_total": total, "pages": len(pages),
                           "vintage_basis": "max dateDernierTraitementEtablissement", **window},
               PAGES_NAME: {"url": url, "rows": None, "pages": len(pages), **window}}
    got = land_generated(settings, source=SOURCE, files=[(flat, FLAT_NAME), (pages_zip, PAGES_NAME)], vintage=vintage,
                         entries=entries, state_key=key_name, upstream=None, primary=FLAT_NAME,
                         state_extra=window)
    shutil.rmtree(work, ignore_errors=True)  # only once landed: an interrupted pull keeps its pages
    return got


def pull_territory(client, communes: list[str], out_dir: Path, key: str | None = None, *, chunk: int = 40,
                   active_only: bool = True, industrial_only: bool = True, nombre: int = NOMBRE_MAX,
                   date: str | None = None) -> tuple[Path, int]:
    """Single-territory pull: the (active, industrial) establishments of ``communes``, in chunks of
    ``chunk`` communes per query (URL length), flattened into ``out_dir/StockEtablissement_territory.zip``.

    ``date`` (``AAAA-MM-JJ``, today by default) is sent with every query: without it a
    ``periode(...)`` condition matches establishments that were *ever* active or industrial, not
    those that are now (issue 14 defect 6)."""
    import datetime as dt

    date = date or dt.date.today().isoformat()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise ValueError(f"date must be AAAA-MM-JJ, got {date!r}")
    api = SireneApi(client, key)
    out_dir = Path(out_dir)
    pages = []
    communes = sorted(dict.fromkeys(communes))
    for i in range(0, len(communes), chunk):
        part = communes[i:i + chunk]
        res = api.search_siret(q_territory(part, active_only, industrial_only), out_dir / f"chunk-{i // chunk + 1:03d}",
                               nombre=nombre, date=date)
        pages.extend(res.pages)
    dest = out_dir / "StockEtablissement_territory.zip"
    rows, _ = write_flat_zip(pages, dest)
    log.info("API Sirene territory pull: %d communes, %d establishments -> %s", len(communes), rows, dest)
    return dest, rows


def read_flat(path: Path):
    """A flattened updates zip as a pandas DataFrame of strings (small by construction)."""
    import pandas as pd

    with zipfile.ZipFile(path) as zf, zf.open(STOCK_MEMBER) as f:
        return pd.read_csv(f, dtype=str, keep_default_na=False)
