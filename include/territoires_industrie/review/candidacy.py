"""Candidacies as reviewers give them: parsed and validated BEFORE anything is queried.

A candidacy is a name and a list of codes of one kind:

* ``epci``: EPCI SIREN codes (9 digits) — the normal case;
* ``commune``: commune INSEE codes (5 characters, ``2A``/``2B`` kept) — converted to their EPCI;
* ``ti``: identifiers of existing Territoires d'industrie (``ti-2701``, phase 1 ``TI1-0001``).

Every code is checked against its pattern here (no code, name or file content ever reaches
SQL: the warehouse is read by release only, with bound parameters). Codes that cannot be
valid are reported and left out; whether a valid code exists in the release is decided later,
by the review, against the release's geography.

Batch file (export of the Démarches simplifiées form): **one row per candidacy x code**, a
header row, ``;`` or ``,`` (or tab) separator, UTF-8 with or without BOM (Windows-1252 is
read too, with a warning). Columns, found by name (case, accents, spaces ignored):

| column | accepted names | content |
|---|---|---|
| dossier (optional) | ``dossier``, ``numero_dossier``, ``dossier_id``, ``id_dossier``, ``id``, ``numero`` | dossier number; rows are grouped by dossier when present |
| candidacy name | ``nom_candidature``, ``candidature``, ``nom``, ``nom_du_territoire``, ``territoire``, ``name`` | name of the candidacy |
| codes (one of) | ``siren_epci``, ``epci``, ``code_epci``, ``siren`` / ``code_commune``, ``insee_com``, ``commune``, ``codgeo`` / ``ti_id``, ``id_ti`` | the code(s) of the row; several codes in one cell may be separated by ``,`` ``|`` or spaces |

A row that cannot be read (wrong number of fields, no name, no code, invalid code) is
reported with its line number and field; the other rows and candidacies are still reviewed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import DataError

KINDS = ("epci", "commune", "ti")
KIND_LABELS = {"epci": "SIREN d'EPCI", "commune": "code commune", "ti": "identifiant de Territoire d'industrie"}
EPCI_RE = re.compile(r"^\d{9}$")
COMMUNE_RE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
TI_RE = re.compile(r"^(?:(ti)-(\d{4})|(ti1)-(\d{4}))$", re.IGNORECASE)
MAX_NAME = 200
MAX_CODES = 200
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

COLUMN_ALIASES = {
    "dossier": ("dossier", "numero_dossier", "num_dossier", "dossier_id", "id_dossier", "id", "numero", "n_dossier"),
    "name": ("nom_candidature", "candidature", "nom_de_la_candidature", "nom", "nom_du_territoire", "territoire",
             "name", "libelle"),
    "epci": ("siren_epci", "epci", "code_epci", "siren", "siren_groupement", "epci_siren"),
    "commune": ("code_commune", "insee_com", "commune", "codgeo", "code_insee", "com"),
    "ti": ("ti_id", "id_ti", "territoire_industrie", "code_ti"),
}


class CandidacyFileError(DataError, ValueError):
    """The batch file cannot be read at all (missing, empty, no usable header)."""


@dataclass
class Problem:
    """One problem with the input, shown to the reviewer.

    ``level``: ``fatal`` (the candidacy cannot be reviewed), ``excluded`` (this code or row is
    left out, the rest goes on), ``warning`` (kept, but look at it)."""

    level: str
    code: str
    message: str
    row: int | None = None  # line of the batch file (header = line 1)
    field: str | None = None
    value: str | None = None
    suggestion: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class CodeItem:
    raw: str
    code: str  # normalised
    rows: list[int] = field(default_factory=list)


@dataclass
class Candidacy:
    name: str
    kind: str
    items: list[CodeItem]
    dossier: str | None = None
    source: str = "arguments"
    rows: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    codes_field: str | None = None  # where the codes came from: option name or column of the batch file

    @property
    def codes(self) -> list[str]:
        return [i.code for i in self.items]

    @property
    def fatal(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "fatal"]

    def key(self) -> str:
        """Identity of the candidacy (same name, dossier, kind and codes = same candidacy)."""
        doc = {"name": self.name, "dossier": self.dossier, "kind": self.kind, "codes": sorted(set(self.codes))}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def slug(self) -> str:
        """Folder name of the review outputs: readable and unique per candidacy."""
        base = slugify(self.name)
        if self.dossier:
            base = f"{slugify(self.dossier)}-{base}"
        return f"{base[:60].strip('-') or 'candidature'}-{self.key()[:10]}"

    def as_dict(self) -> dict:
        return {"name": self.name, "dossier": self.dossier, "kind": self.kind, "codes": self.codes,
                "source": self.source, "rows": self.rows}


def slugify(text: str) -> str:
    s = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", "-", s).strip("-")


def _fold(text: str) -> str:
    return slugify(text).replace("-", "_")


def clean_name(raw) -> str:
    """A candidacy name as data: control characters removed, spaces collapsed."""
    s = _CONTROL.sub(" ", "" if raw is None else str(raw))
    return _SPACES.sub(" ", s).strip()


def _split_spaced(part: str) -> list[str]:
    """One cell split on spaces: ``200000172 200069193`` is two codes, while groups of at most
    3 digits are joined up to a SIREN (``200 000 172`` is one code, as people type it)."""
    out: list[str] = []
    buf = ""
    for tok in _SPACES.split(part.strip()):
        if not tok:
            continue
        if tok.isdigit() and len(tok) <= 3 and len(buf) + len(tok) <= 9:
            buf += tok
            if len(buf) == 9:
                out.append(buf)
                buf = ""
            continue
        if buf:
            out.append(buf)
            buf = ""
        out.append(tok)
    if buf:
        out.append(buf)
    return out


def split_codes(value) -> list[str]:
    """Codes from a list, or from a string separated by ``,`` ``;`` ``|``, line breaks or
    spaces. Digit groups of a SIREN typed with spaces are kept together (``200 000 172``)."""
    if value is None:
        return []
    parts = [str(v) for v in value if v is not None] if isinstance(value, (list, tuple)) else [str(value)]
    out: list[str] = []
    for p in parts:
        for piece in re.split(r"[,;|\n]+", p):
            out += _split_spaced(piece)
    return [c for c in out if c]


def classify(code: str) -> str | None:
    """``epci`` / ``commune`` / ``ti`` by pattern, None when the code fits none."""
    if EPCI_RE.fullmatch(code):
        return "epci"
    if COMMUNE_RE.fullmatch(code):
        return "commune"
    if TI_RE.fullmatch(code):
        return "ti"
    return None


def normalise_code(raw: str, kind: str) -> str:
    """Canonical spelling: ``.0`` of spreadsheet floats dropped, Corsica upper-cased, a
    4-digit commune code given a leading zero, TI ids as ``ti-NNNN`` / ``TI1-NNNN``."""
    c = _SPACES.sub("", str(raw))
    c = re.sub(r"\.0$", "", c)
    if kind == "commune" or re.fullmatch(r"2[ab]\d{3}", c):
        c = c.upper()
        if re.fullmatch(r"\d{4}", c) and kind == "commune":
            c = "0" + c
    m = TI_RE.fullmatch(c)
    if m:
        c = f"ti-{m.group(2)}" if m.group(1) else f"TI1-{m.group(4)}"
    return c


def _shown(value: str, limit: int = 60) -> str:
    """Input echoed in a message: control characters escaped (a code cannot clear a terminal or
    forge a log line), long values cut."""
    from ..arguments import printable

    return printable(value, limit=limit)


def invalid_code_problem(raw: str, kind: str, row: int | None = None, fld: str | None = None) -> Problem:
    where = _where(row, fld)
    extra = f" ({len(raw)} chiffres)" if re.fullmatch(r"\d+", raw) else ""
    return Problem("excluded", "invalid_code",
                   f"{where}« {_shown(raw)} » n'est pas un code valide{extra} : attendu un SIREN d'EPCI (9 chiffres), "
                   "un code commune (5 caractères, ex. 21231 ou 2A004) ou un identifiant de Territoire d'industrie "
                   "(ti-NNNN) ; code ignoré", row=row, field=fld, value=_shown(raw, 200))


def _where(row: int | None, fld: str | None) -> str:
    if row is None:
        return f"champ {fld} : " if fld else ""
    return f"ligne {row}, champ {fld} : " if fld else f"ligne {row} : "


def build_candidacy(name, kind: str, codes: list[tuple[str, int | None]], *, dossier: str | None = None,
                    source: str = "arguments", field_name: str | None = None,
                    problems: list[Problem] | None = None) -> Candidacy:
    """Validate one candidacy's name and codes (patterns only; membership in the release is
    checked by the review). ``codes``: (raw code, line of the file or None)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    problems = list(problems or [])
    rows = sorted({r for _, r in codes if r is not None})
    label = clean_name(name)
    if not label:
        if dossier:
            label = f"Dossier {dossier}"
            problems.append(Problem("warning", "missing_name", f"dossier {dossier} : nom de candidature vide, "
                                    f"« {label} » est utilisé", row=rows[0] if rows else None, field="nom_candidature"))
        else:
            problems.append(Problem("fatal", "missing_name", "nom de candidature vide : donnez un nom (--name)",
                                    field="nom_candidature"))
    if len(label) > MAX_NAME:
        problems.append(Problem("warning", "long_name", f"nom de candidature de {len(label)} caractères, tronqué à "
                                f"{MAX_NAME}", field="nom_candidature"))
        label = label[:MAX_NAME]
    items: dict[str, CodeItem] = {}
    for raw, row in codes:
        raw = str(raw)
        code = normalise_code(raw, kind)
        if classify(code) is None:
            problems.append(invalid_code_problem(raw, kind, row, field_name))
            continue
        if code in items:
            items[code].rows.append(row)
            continue
        items[code] = CodeItem(raw=raw, code=code, rows=[row])
    for it in items.values():
        if len(it.rows) > 1:
            lines = [r for r in it.rows if r is not None]
            where = f" (lignes {', '.join(map(str, lines))})" if lines else ""
            problems.append(Problem("warning", "duplicate_code",
                                    f"« {it.code} » est donné {len(it.rows)} fois{where} : compté une fois",
                                    row=lines[0] if lines else None, field=field_name, value=it.code))
    if len(items) > MAX_CODES:
        problems.append(Problem("fatal", "too_many_codes",
                                f"{len(items)} codes : au plus {MAX_CODES} par candidature", field=field_name))
    if not codes:
        problems.append(Problem("fatal", "empty", f"la candidature « {label or '?'} » ne contient aucun code "
                                f"({KIND_LABELS[kind]})", field=field_name))
    elif not items:
        problems.append(Problem("fatal", "no_valid_code", f"la candidature « {label or '?'} » ne contient aucun code "
                                "valide (voir les codes ignorés)", field=field_name))
    return Candidacy(name=label, kind=kind, items=list(items.values()), dossier=dossier, source=source, rows=rows,
                     problems=problems, codes_field=field_name)


def from_args(name, *, epci=None, communes=None, ti=None) -> Candidacy:
    """One candidacy from command-line / DAG arguments: exactly one of ``epci``, ``communes``,
    ``ti`` (a list, or a string of codes separated by commas)."""
    given = {k: split_codes(v) for k, v in (("epci", epci), ("commune", communes), ("ti", ti)) if v not in (None, "", [])}
    if len(given) > 1:
        kinds = " et ".join(f"--{'communes' if k == 'commune' else k}" for k in given)
        return Candidacy(name=clean_name(name), kind=next(iter(given)), items=[], problems=[Problem(
            "fatal", "mixed_kinds", f"donnez une seule liste de codes ({kinds} reçus) : EPCI, communes ou "
            "Territoire d'industrie")])
    kind, codes = next(iter(given.items())) if given else ("epci", [])
    fld = {"epci": "epci", "commune": "communes", "ti": "ti"}[kind]
    return build_candidacy(name, kind, [(c, None) for c in codes], field_name=fld)


# --- batch file -----------------------------------------------------------------------------

def _decode(data: bytes, path: Path) -> tuple[str, list[Problem]]:
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        text = data.decode("cp1252", errors="replace")
        return text, [Problem("warning", "encoding", f"{path.name} : pas en UTF-8 (octet {exc.start}) ; lu en "
                              "Windows-1252 — vérifiez les accents des noms")]


def _sniff_separator(header_line: str) -> str:
    counts = {sep: header_line.count(sep) for sep in (";", ",", "\t")}
    sep = max(counts, key=lambda s: counts[s])
    return sep if counts[sep] else ";"


def read_batch(path: Path) -> tuple[list[Candidacy], list[Problem]]:
    """Candidacies of a batch file (layout in the module docstring) and the problems of rows
    that belong to no candidacy. Raises :class:`CandidacyFileError` when the file cannot be
    used at all."""
    path = Path(path)
    if not path.is_file():
        raise CandidacyFileError(f"{path} : fichier introuvable")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CandidacyFileError(f"{path.name} : {size} octets, au plus {MAX_FILE_BYTES}")
    text, problems = _decode(path.read_bytes(), path)
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise CandidacyFileError(f"{path.name} : fichier vide")
    sep = _sniff_separator(lines[first])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header, header_line = None, 0
    for row in reader:
        if any(c.strip() for c in row):
            header, header_line = row, reader.line_num
            break
    cols, code_roles = _batch_columns(path, header, header_line, problems)
    groups = _batch_groups(path, reader, header, cols, code_roles, sep, problems)
    candidacies = []
    for g in groups.values():
        kinds = list(g["codes"])
        extra: list[Problem] = list(g["problems"])
        kind = kinds[0] if kinds else code_roles[0]
        if len(kinds) > 1:
            extra.append(Problem("warning", "mixed_kinds", f"dossier {g['dossier'] or g['name']} : codes de plusieurs "
                                 f"types ({', '.join(kinds)}) ; seuls les {KIND_LABELS[kind]} sont gardés"))
        cand = build_candidacy(g["name"], kind, g["codes"].get(kind, []), dossier=g["dossier"],
                               source=f"{path.name}", field_name=header[cols[kind]], problems=extra)
        cand.rows = sorted(set(g["rows"]))
        candidacies.append(cand)
    return candidacies, problems


def _batch_columns(path: Path, header: list[str], header_line: int, problems: list[Problem]):
    """Role -> column index from the header's aliases, and the code columns present."""
    folded = [_fold(h) for h in header]
    cols: dict[str, int] = {}
    for role, aliases in COLUMN_ALIASES.items():
        for a in aliases:
            if a in folded:
                cols[role] = folded.index(a)
                break
    code_roles = [k for k in KINDS if k in cols]
    if not code_roles:
        expected = ", ".join(COLUMN_ALIASES["epci"][:3] + COLUMN_ALIASES["commune"][:2] + COLUMN_ALIASES["ti"][:1])
        raise CandidacyFileError(f"{path.name}, ligne {header_line} : aucune colonne de codes (attendu une de : "
                                 f"{expected}) ; colonnes trouvées : {', '.join(_shown(h, 40) for h in header)}")
    if "name" not in cols and "dossier" not in cols:
        raise CandidacyFileError(f"{path.name}, ligne {header_line} : aucune colonne nom_candidature ni dossier ; "
                                 f"colonnes trouvées : {', '.join(_shown(h, 40) for h in header)}")
    if len(code_roles) > 1:
        problems.append(Problem("warning", "several_code_columns",
                                f"{path.name} : plusieurs colonnes de codes ({', '.join(header[cols[k]] for k in code_roles)})"
                                " ; chaque ligne utilise la première non vide"))
    return cols, code_roles


def _batch_groups(path: Path, reader, header: list[str], cols: dict, code_roles: list[str], sep: str,
                  problems: list[Problem]) -> dict[str, dict]:
    """Rows grouped by dossier (else name): codes per kind, rows, and each group's problems."""
    groups: dict[str, dict] = {}
    n_rows = 0
    for row in reader:
        line = reader.line_num
        if not any(c.strip() for c in row):
            continue
        n_rows += 1
        if n_rows > MAX_ROWS:
            problems.append(Problem("fatal", "too_many_rows", f"{path.name} : plus de {MAX_ROWS} lignes, la suite "
                                    "est ignorée", row=line))
            break
        if len(row) != len(header):
            problems.append(Problem("excluded", "malformed_row",
                                    f"ligne {line} : {len(row)} champ(s) au lieu de {len(header)} (séparateur "
                                    f"« {sep if sep != chr(9) else 'tabulation'} ») ; ligne ignorée", row=line))
            continue
        dossier = clean_name(row[cols["dossier"]]) if "dossier" in cols else ""
        name = clean_name(row[cols["name"]]) if "name" in cols else ""
        kind = next((k for k in code_roles if row[cols[k]].strip()), None)
        if not dossier and not name:
            problems.append(Problem("excluded", "missing_name", f"ligne {line}, champ {header[cols.get('name', cols.get('dossier'))]}"
                                    " : ni nom de candidature ni numéro de dossier ; ligne ignorée", row=line,
                                    field=header[cols.get("name", cols.get("dossier"))]))
            continue
        key = f"d:{dossier}" if dossier else f"n:{name.casefold()}"
        g = groups.setdefault(key, {"dossier": dossier or None, "name": name, "name_row": line, "codes": {},
                                    "rows": [], "problems": []})
        g["rows"].append(line)
        if name and not g["name"]:
            g["name"], g["name_row"] = name, line
        elif name and name != g["name"]:
            fld = header[cols["name"]]
            g["problems"].append(Problem("warning", "name_conflict",
                                         f"ligne {line}, champ {fld} : « {_shown(name)} » diffère du nom « "
                                         f"{_shown(g['name'])} » de la ligne {g['name_row']} pour le dossier {dossier} ; "
                                         f"« {_shown(g['name'])} » est gardé", row=line, field=fld, value=name))
        if kind is None:
            fld = header[cols[code_roles[0]]]
            g["problems"].append(Problem("excluded", "missing_code", f"ligne {line}, champ {fld} : vide ; ligne ignorée",
                                         row=line, field=fld))
            continue
        for c in split_codes(row[cols[kind]]):
            g["codes"].setdefault(kind, []).append((c, line))
    return groups
