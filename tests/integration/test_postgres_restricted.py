"""Issue 20 item 4: restricted data stays restricted on the real PostgreSQL server.

The deployment gives the analysts' read-only role SELECT on every table the warehouse creates
(``ALTER DEFAULT PRIVILEGES ... GRANT SELECT ON TABLES``, deploy/postgres-init.sh). That role must
read the published views, and get "permission denied" on the unmasked counts of ``review_inputs``."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from .airflow_env import PG_ADMIN_URL, create_database, drop_database, postgres_unavailable, unique_name

pytestmark = pytest.mark.postgres


def test_reader_role_reads_published_views_but_not_restricted_counts():
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    from territoires_industrie import warehouse

    url = create_database("ti_grants")
    reader = unique_name("ti_reader")
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE ROLE "{reader}" NOLOGIN'))
        eng = warehouse.get_engine(url)
        with eng.begin() as c:  # what deploy/postgres-init.sh sets up for ti_reader
            c.execute(sa.text(f'GRANT USAGE ON SCHEMA public TO "{reader}"'))
            c.execute(sa.text(f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO "{reader}"'))
        iv = pd.DataFrame({"level": ["epci"], "territory_id": ["200000172"], "indicator_id": ["jobs_ind"],
                           "period": ["2025"], "value": [1.0]})
        ri = pd.DataFrame({"name": ["counts"], "payload": ['{"secret": 42}']})
        warehouse.publish_release(eng, "2026-11", {"indicator_values": iv, "review_inputs": ri}, {})
        with eng.connect() as c:
            c.execute(sa.text(f'SET ROLE "{reader}"'))
            assert c.execute(sa.text("SELECT COUNT(*) FROM latest_indicator_values")).scalar_one() == 1
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                c.execute(sa.text("SELECT payload FROM review_inputs"))
        eng.dispose()
    finally:
        drop_database(url)
        with admin.connect() as c:
            c.execute(sa.text(f'DROP ROLE IF EXISTS "{reader}"'))
        admin.dispose()
