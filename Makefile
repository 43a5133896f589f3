# carewatch: `make run` for the demo, `make test` for the suite; both set up what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CAREWATCH := $(VENV)/bin/carewatch
VENV_STAMP := $(VENV)/.installed
JARS_STAMP := infra/kafka/target/lib/.resolved
CONFIG ?= infra/carewatch.yaml

.PHONY: help setup up down run test bench clean

help:
	@echo "make run    set up, start Kafka and a worker, publish a demo stream, show what happened"
	@echo "make test   set up and run the whole suite (starts its own Kafka)"
	@echo "make up     start the local services (Kafka on localhost:9092, topics created)"
	@echo "make down   stop the demo worker and gateway, and Kafka"
	@echo "make bench  run the quick benchmarks under bench/ (scoring, ingest)"

$(VENV_STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c requirements.lock -e '.[test,evaluate]'
	touch $@

$(JARS_STAMP): infra/kafka/pom.xml
	cd infra/kafka && mvn -q -B dependency:copy-dependencies -DoutputDirectory=target/lib -DincludeScope=runtime
	touch $@

setup: $(VENV_STAMP) $(JARS_STAMP)

up: setup
	infra/kafka/kafka.sh start
	$(CAREWATCH) topics create --config $(CONFIG)

down:
	-infra/demo/demo.sh stop
	infra/kafka/kafka.sh stop

run: up
	infra/demo/demo.sh start

test: setup
	$(PY) -m pytest

bench: up
	$(PY) bench/scoring.py
	$(PY) bench/ingest.py
	@echo "longer ones: bench/decision.sh (the decision bar, ~5 min), $(PY) bench/state.py (100,000 people, ~5 min)"

clean: down
	rm -rf .data
