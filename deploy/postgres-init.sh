#!/usr/bin/env bash
# Creates the two databases of the platform, each owned by its own role, on the first start of an
# empty PostgreSQL volume (the official postgres image runs /docker-entrypoint-initdb.d/*.sh once):
#
#   airflow       Airflow metadata + Celery result backend      role airflow       ($AIRFLOW_DB_PASSWORD)
#   ti_warehouse  indicator releases, latest_* views            role ti_warehouse  ($TI_WAREHOUSE_DB_PASSWORD)
#   ti_reader     NOLOGIN group role: read-only on the warehouse (grant it to analysts' logins)
#
# Neither role can connect to the other's database. Passwords come from the environment (.env),
# are passed to psql as variables and are never echoed. Names can be overridden (tests use unique
# ones): AIRFLOW_DB_NAME, AIRFLOW_DB_USER, TI_WAREHOUSE_DB_NAME, TI_WAREHOUSE_DB_USER, TI_READER_ROLE.
set -euo pipefail

: "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set (see .env.example)}"
: "${TI_WAREHOUSE_DB_PASSWORD:?TI_WAREHOUSE_DB_PASSWORD is not set (see .env.example)}"
AIRFLOW_DB_NAME="${AIRFLOW_DB_NAME:-airflow}"
AIRFLOW_DB_USER="${AIRFLOW_DB_USER:-airflow}"
TI_WAREHOUSE_DB_NAME="${TI_WAREHOUSE_DB_NAME:-ti_warehouse}"
TI_WAREHOUSE_DB_USER="${TI_WAREHOUSE_DB_USER:-ti_warehouse}"
TI_READER_ROLE="${TI_READER_ROLE:-ti_reader}"

psql=(psql -v ON_ERROR_STOP=1 -X -q --username "${POSTGRES_USER:-postgres}"
      -v af_db="$AIRFLOW_DB_NAME" -v af_user="$AIRFLOW_DB_USER" -v af_pw="$AIRFLOW_DB_PASSWORD"
      -v wh_db="$TI_WAREHOUSE_DB_NAME" -v wh_user="$TI_WAREHOUSE_DB_USER" -v wh_pw="$TI_WAREHOUSE_DB_PASSWORD"
      -v reader="$TI_READER_ROLE")

"${psql[@]}" --dbname postgres <<'SQL'
CREATE ROLE :"af_user" LOGIN PASSWORD :'af_pw';
CREATE DATABASE :"af_db" OWNER :"af_user" ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE :"af_db" FROM PUBLIC;

CREATE ROLE :"wh_user" LOGIN PASSWORD :'wh_pw';
CREATE DATABASE :"wh_db" OWNER :"wh_user" ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE :"wh_db" FROM PUBLIC;

CREATE ROLE :"reader" NOLOGIN;
GRANT CONNECT ON DATABASE :"wh_db" TO :"reader";
SQL

# Read-only access for the reader role to every table/view the warehouse role creates later
# (releases, indicator tables, latest_* views are created on the first publication).
"${psql[@]}" --dbname "$TI_WAREHOUSE_DB_NAME" <<'SQL'
GRANT USAGE ON SCHEMA public TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"wh_user" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
SQL

echo "postgres-init: databases ${AIRFLOW_DB_NAME} and ${TI_WAREHOUSE_DB_NAME} created, roles ${AIRFLOW_DB_USER}, ${TI_WAREHOUSE_DB_USER}, ${TI_READER_ROLE}"
