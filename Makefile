# Territoires d'industrie — indicators. Two commands matter:
#   make run    # whole pipeline through the real Airflow DAGs on the embedded default
#   make test   # the test suite
# and, for data engineers, make airflow (the Airflow UI on the same embedded default).
PYTHON ?= python3
VENV   ?= $(CURDIR)/.venv
BIN     = $(VENV)/bin

export TI_DATA_DIR ?= $(CURDIR)/var
export AIRFLOW_HOME ?= $(TI_DATA_DIR)/airflow_home
export AIRFLOW__CORE__DAGS_FOLDER = $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER = $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES = False
export AIRFLOW__CORE__PARALLELISM = 4
export AIRFLOW__API__HOST = 127.0.0.1
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN ?= sqlite:///$(AIRFLOW_HOME)/airflow.db
export AIRFLOW__LOGGING__LOGGING_LEVEL ?= INFO
export GX_ANALYTICS_ENABLED = false
export TI_TASK_RETRIES ?= 0
export PYTHONPATH := $(CURDIR)/dags:$(CURDIR)/plugins:$(PYTHONPATH)

DAGS = ti_geography ti_sirene ti_employment ti_indicators ti_sirene_updates ti_publish

.PHONY: run test install airflow-db airflow summary report bench bench-chain clean

$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	@touch $@

install: $(BIN)/.installed

airflow-db: install
	@mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (tail -30 $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	$(BIN)/airflow pools set insee_api 1 "INSEE APIs: 30 requests/min per key" >> $(AIRFLOW_HOME)/db-migrate.log 2>&1

run: airflow-db
	@set -e; for dag in $(DAGS); do \
	  echo "==> airflow dags test $$dag"; \
	  $(BIN)/airflow dags test $$dag > $(AIRFLOW_HOME)/dags-test-$$dag.log 2>&1 \
	    || { tail -60 $(AIRFLOW_HOME)/dags-test-$$dag.log; echo "FAILED: $$dag (full log: $(AIRFLOW_HOME)/dags-test-$$dag.log)"; exit 1; }; \
	  grep -oE "run_duration=[0-9.]+|state=success" $(AIRFLOW_HOME)/dags-test-$$dag.log | tail -2 | tr '\n' ' '; echo; \
	done
	$(BIN)/ti-indicators summary

airflow: airflow-db  ## the Airflow UI on the embedded default (http://127.0.0.1:8080, login printed); Ctrl-C stops it
	$(BIN)/python deploy/airflow_local.py

summary: install
	$(BIN)/ti-indicators summary

report: install   ## rebuild the HTML report and exports from the warehouse, without re-running the pipeline
	$(BIN)/ti-indicators report --exports

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install    ## SIRENE ingest benchmark (writes bench/RESULTS.md); BENCH_ARGS="--sizes 1M,4M,16M,44M"
	$(BIN)/python bench/bench_ingest.py $(BENCH_ARGS)

bench-chain: install    ## whole monthly chain at national volume (writes bench/RESULTS.md); BENCH_ARGS="--stock-rows 4M"
	$(BIN)/python bench/bench_chain.py $(BENCH_ARGS)

clean:
	rm -rf $(TI_DATA_DIR)
