"""The Grafana dashboards, as code: "Pipeline health" for operators, "Care overview" for care leads.

Built with grafana-foundation-sdk and committed as JSON under
infra/grafana/dashboards/ (`python -m streams.dashboards` writes them; a
test fails when the committed JSON and this code disagree). No panel shows
a person: the metrics carry no person id.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

__all__ = ["DATASOURCE_UID", "FOLDER_UID", "build", "queries"]

DATASOURCE_UID = "carewatch-prometheus"
FOLDER_UID = "carewatch"
DIRECTORY = Path(__file__).resolve().parent.parent / "infra" / "grafana" / "dashboards"
_SOURCE = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)


def _query(expr: str, legend: str = "", ref: str = "A") -> Dataquery:
    query = Dataquery().expr(expr).datasource(_SOURCE).ref_id(ref)
    return query.legend_format(legend) if legend else query


def _series(title: str, unit: str, *queries: tuple[str, str], width: int = 12, description: str = "") -> Any:
    panel = timeseries.Panel().title(title).unit(unit).datasource(_SOURCE).span(width).height(8).min(0)
    if description:
        panel = panel.description(description)
    for ref, (expr, legend) in zip("ABCDEFGH", queries):
        panel = panel.with_target(_query(expr, legend, ref))
    return panel


def _stat(title: str, unit: str, expr: str, *, width: int = 6, description: str = "") -> Any:
    panel = stat.Panel().title(title).unit(unit).datasource(_SOURCE).span(width).height(4).with_target(_query(expr))
    return panel.description(description) if description else panel


def pipeline_health() -> Dashboard:
    return (
        Dashboard("carewatch / Pipeline health")
        .uid("carewatch-pipeline")
        .tags(["carewatch", "operators"])
        .refresh("30s")
        .time("now-3h", "now")
        .with_row(Row("Now"))
        .with_panel(_stat("Workers up", "none", 'sum(up{job="carewatch-worker"})', width=4))
        .with_panel(_stat("Stalled partitions", "none", "max(carewatch_ingest_stalled_partitions)", width=5,
                          description="Held partitions with records waiting and none read (see the README)"))
        .with_panel(_stat("Consumer lag", "none", "sum(carewatch_ingest_consumer_lag)", width=5))
        .with_panel(_stat("Records read again (1h)", "none", "sum(increase(carewatch_offset_gaps_total[1h]))",
                          width=5, description="Runs of records the consumer passed over, caught and read again"))
        .with_panel(_stat("Dead-letter share (5m)", "percentunit", "carewatch:dead_letter_share:ratio_rate5m",
                          width=5))
        .with_row(Row("Throughput and latency"))
        .with_panel(_series("Events by outcome", "ops",
                            ("sum by (outcome) (rate(carewatch_ingest_events_total[5m]))", "{{outcome}}")))
        .with_panel(_series("Event-time lag", "s",
                            ("histogram_quantile(0.5, sum by (le) (rate(carewatch_ingest_event_time_lag_seconds_bucket[5m])))", "p50"),
                            ("histogram_quantile(0.99, sum by (le) (rate(carewatch_ingest_event_time_lag_seconds_bucket[5m])))", "p99"),
                            description="Processing time minus event time: late and replayed events show here"))
        .with_panel(_series("Model run p99 by model", "s",
                            ("histogram_quantile(0.99, sum by (le, model) (rate(carewatch_scoring_seconds_bucket[5m])))",
                             "{{model}}")))
        .with_panel(_series("Alert routing wait", "s",
                            ("histogram_quantile(0.5, sum by (le) (rate(carewatch_alerting_wait_seconds_bucket[5m])))", "p50"),
                            ("histogram_quantile(0.99, sum by (le) (rate(carewatch_alerting_wait_seconds_bucket[5m])))", "p99"),
                            description="From an alert's record to the alerting agent applying it: how late care teams hear"))
        .with_panel(_series("Consumer lag by partition", "none",
                            ("sum by (partition) (carewatch_ingest_consumer_lag)", "partition {{partition}}")))
        .with_row(Row("Dead letters and deliveries"))
        .with_panel(_series("Dead letters by code", "ops",
                            ("sum by (code) (rate(carewatch_ingest_dead_letters_total[5m]))", "{{code}}")))
        .with_panel(_series("Deliveries by channel and outcome", "ops",
                            ("sum by (channel, outcome) (rate(carewatch_alerting_deliveries_total[5m]))",
                             "{{channel}} {{outcome}}")))
        .with_panel(_series("Delivery attempts by result", "ops",
                            ("sum by (channel, result) (rate(carewatch_alerting_delivery_attempts_total[5m]))",
                             "{{channel}} {{result}}")))
        .with_panel(_series("Alerting records failed", "ops",
                            ("sum by (outcome) (rate(carewatch_alerting_errors_total[5m]))", "{{outcome}}"),
                            description="retried: held back and tried again; dead_lettered: can never be applied, "
                                        "on carewatch.alerts.dlq (an alert there reaches no care team)"))
        .with_panel(_series("Alerts no team can take", "none",
                            ("sum(carewatch_alerting_unowned_alerts)", "unowned"),
                            description="Alerts in care of a care team the config no longer names: they escalate, "
                                        "and every token gets 403 until the config names the team again"))
        .with_panel(_series("Person state size (median written)", "bytes",
                            ("histogram_quantile(0.5, sum by (le) (rate(carewatch_state_person_bytes_bucket[15m])))",
                             "median")))
        .with_row(Row("Ingest gateway (HTTP)"))
        .with_panel(_series("Gateway requests by status", "reqps",
                            ("sum by (status) (rate(carewatch_gateway_requests_total[5m]))", "{{status}}"), width=8,
                            description="503: the broker did not take every event in time; the app sends them again"))
        .with_panel(_series("Gateway events by result", "ops",
                            ("sum by (result) (rate(carewatch_gateway_events_total[5m]))", "{{result}}"), width=8,
                            description="rejected: refused with a reason naming the field; failed: to send again"))
        .with_panel(_series("Gateway publish time", "s",
                            ("histogram_quantile(0.99, sum by (le) (rate(carewatch_gateway_publish_seconds_bucket[5m])))",
                             "p99"), width=8,
                            description="From a request's arrival to the broker's acknowledgement of its events"))
    )


def care_overview() -> Dashboard:
    return (
        Dashboard("carewatch / Care overview")
        .uid("carewatch-care")
        .tags(["carewatch", "care leads"])
        .refresh("1m")
        .time("now-7d", "now")
        .with_row(Row("Now"))
        .with_panel(_stat("Open critical alerts", "none", 'sum(carewatch_alerting_open_alerts{severity="critical"})'))
        .with_panel(_stat("Critical past deadline", "none",
                          'sum(carewatch_alerting_overdue_alerts{severity="critical"})',
                          description="Firing critical alerts with no human on them after 5 minutes"))
        .with_panel(_stat("Open urgent alerts", "none", 'sum(carewatch_alerting_open_alerts{severity="urgent"})'))
        .with_panel(_stat("Escalations (24h)", "none", "sum(increase(carewatch_alerting_escalations_total[24h]))"))
        .with_row(Row("Alerts and response"))
        .with_panel(_series("Alerts raised by team and severity (per hour)", "none",
                            ("sum by (care_team, severity) (increase(carewatch_alerts_raised_total[1h]))",
                             "{{care_team}} {{severity}}")))
        .with_panel(_series("Time to acknowledge, p90", "s",
                            ("histogram_quantile(0.9, sum by (le, severity) "
                             "(rate(carewatch_alerting_time_to_acknowledge_seconds_bucket[1h])))", "{{severity}}")))
        .with_panel(_series("Alert burden per team (alerts per day)", "none",
                            ("sum by (care_team) (increase(carewatch_alerts_raised_total[1d]))", "{{care_team}}"),
                            description="Every alert asks something of a clinician: watch this for fatigue"))
        .with_panel(_series("Open alerts by severity", "none",
                            ("sum by (severity) (carewatch_alerting_open_alerts)", "{{severity}}")))
    )


def build() -> dict[str, dict[str, Any]]:
    """Every dashboard as Grafana JSON, by file name."""
    return {f"{d.build().uid}.json": json.loads(json.dumps(d.build(), cls=JSONEncoder))
            for d in (pipeline_health(), care_overview())}


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target."""
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] if panel.get("type") != "row"
            for target in panel.get("targets", [])]


def main() -> None:
    DIRECTORY.mkdir(parents=True, exist_ok=True)
    for name, body in build().items():
        (DIRECTORY / name).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        print(f"wrote {DIRECTORY / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
