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

.PHONY: help setup prometheus chromium up down run test chaos bench clean

help:
	@echo "make run    set up, start Kafka and a worker, publish a demo stream, show what happened"
	@echo "make test   set up and run the whole suite (starts its own Kafka)"
	@echo "make up     start the local services (Kafka on localhost:9092, topics created)"
	@echo "make down   stop the demo worker and gateway, and Kafka"
	@echo "make chaos  the fault and abuse suite at full size (its short form runs in make test)"
	@echo "make bench  run the quick benchmarks under bench/ (scoring, ingest)"

$(VENV_STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c requirements.lock -e '.[test,evaluate,bench]'
	touch $@

$(JARS_STAMP): infra/kafka/pom.xml
	cd infra/kafka && mvn -q -B dependency:copy-dependencies -DoutputDirectory=target/lib -DincludeScope=runtime
	touch $@

# Prometheus and promtool from Debian's package: the rules' tests and the live dashboard check need them.
PROMTOOL := $(shell command -v promtool 2>/dev/null)

setup: $(VENV_STAMP) $(JARS_STAMP) prometheus chromium

prometheus:
ifeq ($(PROMTOOL),)
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; \
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; fi
endif

# Chromium from Debian's package: the console's browser tests drive it through Playwright (no browser download).
CHROMIUM := $(shell command -v chromium 2>/dev/null)

chromium:
ifeq ($(CHROMIUM),)
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi
endif

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

# The fault and abuse suite at full size (100,000 events of poison, a minute of outage); writes its table.
chaos: setup
	CAREWATCH_CHAOS=full CAREWATCH_CHAOS_REPORT=bench/results/chaos.md $(PY) -m pytest -m chaos --timeout 1800 tests/chaos
	@cat bench/results/chaos.md

bench: up
	$(PY) bench/scoring.py
	$(PY) bench/ingest.py
	@echo "longer ones: bench/decision.sh (the decision bar, ~5 min), $(PY) bench/state.py (100,000 people, ~5 min),"
	@echo "  $(PY) bench/latency.py --rate 1000 (produce to alert, ~1 min)"

clean: down
	rm -rf .data
