#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft) on loopback, from Maven Central jars.
#   kafka.sh start   resolve jars if needed, format storage once, start, wait until
#                    the broker answers metadata requests; a second start finds it running
#   kafka.sh stop    stop it cleanly (SIGTERM, then wait)
#   kafka.sh status  exit 0 when it answers
# Settings: CAREWATCH_KAFKA_PORT (9092), CAREWATCH_KAFKA_CONTROLLER_PORT (9093),
#           CAREWATCH_KAFKA_DATA (<repo>/.data/kafka), PYTHON (<repo>/.venv/bin/python).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${CAREWATCH_KAFKA_PORT:-9092}
cport=${CAREWATCH_KAFKA_CONTROLLER_PORT:-9093}
data=${CAREWATCH_KAFKA_DATA:-$root/.data/kafka}
python=${PYTHON:-$root/.venv/bin/python}
lib=$here/target/lib
pidfile=$data/broker.pid

answers() {
  "$python" "$here/ready.py" "127.0.0.1:$port" "${1:-2}"
}

running_pid() {
  [ -f "$pidfile" ] || return 1
  local pid; pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
  if answers 0 >/dev/null 2>&1; then
    echo "kafka: already running on 127.0.0.1:$port"; return 0
  fi
  if running_pid >/dev/null; then
    echo "kafka: process $(cat "$pidfile") exists but does not answer; waiting"
  else
    [ -f "$lib/kafka_2.13-"*.jar ] 2>/dev/null || ls "$lib"/kafka_2.13-*.jar >/dev/null 2>&1 || \
      (cd "$here" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=target/lib -DincludeScope=runtime)
    mkdir -p "$data"
    sed -e "s#@PORT@#$port#g" -e "s#@CONTROLLER_PORT@#$cport#g" -e "s#@DATA@#$data#g" \
      "$here/server.properties" > "$data/server.properties"
    local cp="$lib/*"
    if [ ! -f "$data/logs/meta.properties" ]; then
      java -cp "$cp" -Dlog4j2.configurationFile="$here/log4j2.properties" kafka.tools.StorageTool \
        format --standalone --cluster-id "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)" \
        --config "$data/server.properties" >"$data/format.log" 2>&1 \
        || { cat "$data/format.log" >&2; exit 1; }
    fi
    local t0; t0=$(date +%s.%N)
    nohup java -Xms256m -Xmx1g -XX:+UseG1GC -cp "$cp" \
      -Dlog4j2.configurationFile="$here/log4j2.properties" \
      kafka.Kafka "$data/server.properties" >"$data/broker.log" 2>&1 &
    echo $! > "$pidfile"
  fi
  if ! answers 120; then
    echo "kafka: did not answer within 120 s; last log lines:" >&2
    tail -n 30 "$data/broker.log" >&2 || true
    exit 1
  fi
  echo "kafka: running on 127.0.0.1:$port (pid $(cat "$pidfile"))${t0:+, started in $(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || echo '?') s}"
}

stop() {
  local pid
  if ! pid=$(running_pid); then echo "kafka: not running"; rm -f "$pidfile"; return 0; fi
  kill -TERM "$pid"
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "kafka: still running after 30 s; killing" >&2; kill -KILL "$pid"; fi
  rm -f "$pidfile"
  echo "kafka: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) answers 2 ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
