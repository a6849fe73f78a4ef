"""data.gouv.fr dataset API: find a resource of a dataset by its title (never by a hard-coded id)
and take its vintage from the publisher's ``last_modified`` metadata.

``GET {TI_URL_DATAGOUV}/datasets/{id_or_slug}/`` returns ``{"id", "title", "last_modified",
"resources": [{"id", "title", "url", "format", "filesize", "last_modified", "checksum":
{"type", "value"}}, ...]}``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from ..http import HttpClient, UpstreamFormatError

log = logging.getLogger(__name__)

#: "Base Sirene des entreprises et de leurs établissements (SIREN, SIRET)" (INSEE)
SIRENE_DATASET = "5b7ffc618b4c4169d30727e0"
#: "Programme Territoires d'industrie" (ANCT)
TI_DATASET = "programme-territoires-dindustrie"


class ResourceNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Resource:
    id: str
    title: str
    url: str
    format: str
    last_modified: str
    filesize: int | None = None
    checksum: tuple[str, str] | None = None

    @property
    def vintage(self) -> str:
        """Publisher's as-of: the date part of ``last_modified`` (``YYYY-MM-DD``)."""
        return self.last_modified[:10]

    @property
    def marker(self) -> dict:
        """What says 'the upstream file changed' without downloading it."""
        return {"resource_id": self.id, "last_modified": self.last_modified, "filesize": self.filesize,
                "url": self.url}


def get_dataset(client: HttpClient, dataset: str) -> dict:
    url = client.url("datagouv", f"datasets/{dataset}/")
    _, data = client.get_json(url, label=f"data.gouv dataset {dataset}")
    if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
        raise UpstreamFormatError(f"data.gouv dataset {dataset}: response has no 'resources' list "
                                  f"(keys: {sorted(data)[:10] if isinstance(data, dict) else type(data).__name__})")
    return data


def _resource(r: dict, dataset: str) -> Resource:
    missing = [k for k in ("title", "url", "last_modified") if not r.get(k)]
    if missing:
        raise UpstreamFormatError(f"data.gouv dataset {dataset}: resource {r.get('id')!r} lacks {missing}")
    ck = r.get("checksum") or None
    checksum = None
    if isinstance(ck, dict) and ck.get("type") in ("sha1", "sha256", "md5") and ck.get("value"):
        checksum = (ck["type"], ck["value"])
    size = r.get("filesize")
    return Resource(id=str(r.get("id", "")), title=r["title"], url=r["url"], format=(r.get("format") or "").lower(),
                    last_modified=str(r["last_modified"]), filesize=int(size) if size not in (None, "") else None,
                    checksum=checksum)


def find_resources(data: dict, title_regex: str, formats: tuple[str, ...] | None = None) -> list[Resource]:
    """Resources whose title (or file name) matches ``title_regex``, newest ``last_modified`` first."""
    rx = re.compile(title_regex)
    dataset = data.get("slug") or data.get("id") or "?"
    out = []
    for r in data["resources"]:
        name = str(r.get("url", "")).rsplit("/", 1)[-1]
        if not (rx.search(str(r.get("title", ""))) or rx.search(name)):
            continue
        res = _resource(r, dataset)
        if formats and res.format not in formats and not any(name.lower().endswith("." + f) for f in formats):
            continue
        out.append(res)
    return sorted(out, key=lambda r: r.last_modified, reverse=True)


def resolve_resource(data: dict, title_regex: str, formats: tuple[str, ...] | None = None) -> Resource:
    """The newest resource matching ``title_regex`` (and one of ``formats``, in order of preference)."""
    dataset = data.get("slug") or data.get("id") or "?"
    for fmt in (formats or (None,)):
        found = find_resources(data, title_regex, (fmt,) if fmt else None)
        if found:
            res = found[0]
            if len(found) > 1:
                log.info("data.gouv %s: %d resources match %r, newest taken: %r (%s)", dataset, len(found),
                         title_regex, res.title, res.last_modified)
            return res
    titles = [r.get("title") for r in data["resources"]][:15]
    raise ResourceNotFound(f"data.gouv dataset {dataset}: no resource titled like {title_regex!r} "
                           f"(formats {formats}); titles seen: {titles}")
