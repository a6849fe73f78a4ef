# Image of the Territoires d'industrie platform: the official Apache Airflow image + the pinned
# requirements + the library + the DAGs. One image for every component (api-server, scheduler,
# dag-processor, triggerer, Celery workers) and for the Kubernetes executor's task pods.
#
#   docker build -t territoires-industrie-airflow:0.1.0 .
#
# Nothing is installed at container start (no _PIP_ADDITIONAL_REQUIREMENTS): what runs is what
# was built, and CI lints this file with hadolint (tests/integration/test_deploy_compose.py).
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

# Same pinned set as the development venv and CI; requirements.txt pins apache-airflow itself, so pip
# can neither upgrade nor downgrade the Airflow of the base image behind our back.
COPY --chown=50000:0 requirements.txt /opt/ti/requirements.txt
RUN pip install --no-cache-dir -r /opt/ti/requirements.txt

# The library, installed as a regular (non-editable) package with its bundled official files
# (include/territoires_industrie/data/real); the `ti-indicators` command comes with it.
COPY --chown=50000:0 pyproject.toml README.md /opt/ti/src/
COPY --chown=50000:0 include /opt/ti/src/include
RUN pip install --no-cache-dir --no-deps /opt/ti/src \
    && pip check \
    && python -c "import territoires_industrie.geography as g; g.build_geography()"

# DAGs and plugins are baked in: a deployment is one immutable image tag.
COPY --chown=50000:0 dags /opt/airflow/dags
COPY --chown=50000:0 plugins /opt/airflow/plugins

# Defaults only; docker-compose.yaml / the Helm values set the real configuration from the
# environment. TI_DATA_DIR is a mounted volume (raw landing zone, staging, exports, reports).
ENV AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/plugins \
    PYTHONPATH=/opt/airflow/dags:/opt/airflow/plugins \
    TI_DATA_DIR=/opt/ti/data \
    GX_ANALYTICS_ENABLED=false

USER 50000
