#!/usr/bin/env bash
# The demo behind `make run`: a worker, a small synthetic stream, and what became of it.
#   demo.sh start   start a worker (background), publish infra/demo/events.jsonl, report
#   demo.sh stop    stop the demo worker
# Expects Kafka up with topics created (make up does both). All data here is synthetic.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
config=${CONFIG:-infra/carewatch.yaml}
py=.venv/bin/python
state=.data/demo
pidfile=$state/worker.pid
port=$($py -c "from streams.config import load; print(load('$config').web.port)")

stop() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill -TERM "$(cat "$pidfile")"
    for _ in $(seq 1 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    echo "demo: worker stopped"
  fi
  rm -f "$pidfile"
}

start() {
  mkdir -p "$state"
  if ! { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }; then
    nohup .venv/bin/carewatch worker --config "$config" >"$state/worker.log" 2>&1 &
    echo $! >"$pidfile"
  fi
  echo "demo: waiting for the worker to be ready (http://127.0.0.1:$port/readyz)"
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -n 30 "$state/worker.log" >&2; exit 1; }
    sleep 0.5
  done
  $py "$here/demo.py" --config "$config" --port "$port" infra/demo/events.jsonl
  cat <<EOM

Where to look:
  metrics     http://127.0.0.1:$port/metrics   (carewatch_ingest_events_total by type and outcome)
  health      http://127.0.0.1:$port/healthz and /readyz
  console     http://127.0.0.1:$port/console/   (sign in with the demo token demo-north-token)
  alerts      printed by the console channel in $state/worker.log (JSON lines)
  ack API     curl -X POST -H 'Authorization: Bearer demo-north-token' \
                http://127.0.0.1:$port/v1/alerts/<alert_id>/ack     (ids: carewatch.alerts, the log)
  silences    http://127.0.0.1:$port/v1/silences   (same token)
  topics      carewatch.events, .dlq, .risk, .alerts, .alerts.commands, .alerts.dlq, .silences, carewatch.audit
  dashboards  with a Docker engine: docker compose up --build, then Grafana at http://localhost:3000
              (admin/admin; "carewatch / Pipeline health" and "carewatch / Care overview"), or push them to
              your Grafana: .venv/bin/carewatch grafana push --url URL --token-env GRAFANA_TOKEN
  Prometheus  infra/prometheus/prometheus.yml scrapes this worker: prometheus --config.file=infra/prometheus/prometheus.yml
Run it again: every event is now a duplicate (the dedupe window is 24 h).
Stop everything with: make down
EOM
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
