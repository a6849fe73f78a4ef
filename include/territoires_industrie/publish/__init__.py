"""Publication of a release for people: exports (XLSX, CSV, Parquet) built from the warehouse.

The static HTML report lives in :mod:`territoires_industrie.report`. Both read PUBLISHED
releases only (``warehouse.read_release``), never staging or raw files.
"""

from .exports import build_exports, export_names, exports_complete, write_csv, write_parquet, write_xlsx  # noqa: F401
from .tables import ReleaseData, french_table, load_release, wide_table  # noqa: F401
