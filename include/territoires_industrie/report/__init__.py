"""Static HTML report of a published release (readable offline): see :mod:`.build`.

``build_report(engine, reports_dir, release_id=None, settings=..., geometry_dir=..., exports_dir=...)``
rebuilds the site from the warehouse alone; ``ti-indicators report`` calls it.
"""

from .build import build_report, compute_changes, page_url  # noqa: F401
