"""`carewatch`: the command line (CONTRACT §4)."""

from __future__ import annotations

import argparse
import gc
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import config
from .exceptions import ConfigError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carewatch", description="Streaming early warning for mental-health care.")
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser("worker", help="run the stream processors and their web server")
    worker.add_argument("--config", type=Path)
    worker.add_argument("--loglevel", default="info")

    gateway = commands.add_parser("gateway", help="run the HTTP ingest gateway (POST /v1/events)")
    gateway.add_argument("--config", type=Path)

    publish = commands.add_parser("publish", help="validate and publish events from a JSON Lines file")
    publish.add_argument("file", type=Path)
    publish.add_argument("--config", type=Path)
    publish.add_argument("--bootstrap-servers", help="overrides kafka.bootstrap_servers")
    publish.add_argument("--quiet", action="store_true", help="no progress bar")

    simulate = commands.add_parser(
        "simulate", help="a synthetic cohort of people, apps and wearables (events JSONL and labels, or to Kafka)"
    )
    simulate.add_argument("--people", type=int, default=200)
    simulate.add_argument("--days", type=int, default=120)
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--start", type=_date, help="first day, YYYY-MM-DD (default 2026-01-05)")
    simulate.add_argument("--episode-share", type=float, default=0.3)
    simulate.add_argument("--intraday-heart-rate", action="store_true", help="hourly heart rate (24x the wearable volume)")
    simulate.add_argument("--out", default="-", help="events JSONL file, - for standard output")
    simulate.add_argument("--labels", type=Path, help="where to write the ground-truth labels (JSON)")
    simulate.add_argument("--kafka", action="store_true", help="publish to carewatch.events instead of writing a file")
    simulate.add_argument("--rate", type=float, default=0, help="events per second when publishing (0: as fast as possible)")
    simulate.add_argument("--config", type=Path)

    evaluate = commands.add_parser(
        "evaluate", help="replay a labelled cohort offline and report how early and how accurately alerts fire"
    )
    evaluate.add_argument("--events", type=Path, help="events JSONL (from carewatch simulate); omit to simulate")
    evaluate.add_argument("--labels", type=Path, help="the labels of --events")
    evaluate.add_argument("--people", type=int, default=200)
    evaluate.add_argument("--days", type=int, default=120)
    evaluate.add_argument("--seed", type=int, default=2026, help="a seed not used in training (11, 12) or tuning (31)")
    evaluate.add_argument("--target-sensitivity", type=float, default=0.85)
    evaluate.add_argument("--out", type=Path, default=Path("evaluation"), help="folder for report.md and plots")
    evaluate.add_argument("--config", type=Path)

    topics = commands.add_parser("topics", help="create carewatch's topics with their settings")
    topics.add_argument("action", choices=["create"])
    topics.add_argument("--config", type=Path)

    grafana = commands.add_parser("grafana", help="create carewatch's datasource, folder and dashboards in Grafana")
    grafana.add_argument("action", choices=["push"])
    grafana.add_argument("--url", required=True, help="Grafana's address, such as http://127.0.0.1:3000")
    grafana.add_argument("--token-env", required=True, metavar="NAME",
                         help="the environment variable that holds a Grafana service-account token")
    grafana.add_argument("--prometheus-url", default="http://prometheus:9090",
                         help="the Prometheus address Grafana should query (default: the compose service)")
    grafana.add_argument("--config", type=Path)

    args = parser.parse_args(argv)
    if args.command == "grafana":
        return _grafana(args)
    try:
        settings = config.load(args.config)
    except ConfigError as exc:
        print(f"carewatch: bad configuration: {exc}", file=sys.stderr)
        return 2
    if args.command == "worker":
        return _worker(settings, args.loglevel)
    if args.command == "gateway":
        from .gateway import serve

        return serve(settings)
    if args.command == "publish":
        return _publish(settings, args)
    if args.command == "simulate":
        return _simulate(settings, args)
    if args.command == "evaluate":
        return _evaluate(settings, args)
    return _topics(settings)


def _worker(settings: config.Settings, loglevel: str) -> int:
    import faust

    from . import logs
    from .app import create_worker

    from .topics import ensure

    ensure(settings)  # every topic, the tables' changelogs included, exists before faust assigns partitions
    worker = create_worker(settings)
    runner = faust.Worker(worker.app, loglevel=loglevel, logging_config=logs.config(loglevel))
    # faust's terminal spinner sets the root logger to DEBUG so that every debug line moves it: every
    # library's debug records were then built and thrown away (about a tenth of the worker's time),
    # and its escape codes broke the JSON log lines. Logs are for machines here: no spinner.
    runner.spinner = None
    # What is built by now (modules, models, the app) lives as long as the process. Frozen out of the cyclic
    # collector's sight, a full collection walks only what the stream makes: 15 to 25 ms instead of 70 to
    # 100 ms every few seconds at 1,000 events/s, each a pause every batch in flight waited out.
    gc.collect()
    gc.freeze()
    runner.execute_from_commandline()
    return 0


def _grafana(args: argparse.Namespace) -> int:
    import os

    try:
        from grafana_client.client import GrafanaException

        from .grafana import push
    except ImportError:
        print("carewatch grafana: needs the grafana extra: pip install 'carewatch[grafana]'", file=sys.stderr)
        return 2

    token = os.environ.get(args.token_env)
    if not token:
        print(f"carewatch grafana: environment variable {args.token_env} is not set", file=sys.stderr)
        return 2
    try:
        done = push(url=args.url, token=token, prometheus_url=args.prometheus_url)
    except (GrafanaException, OSError) as exc:
        print(f"carewatch grafana: {args.url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for name, what in done.items():
        print(f"{name}: {what}")
    return 0


def _date(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)


def _simulate(settings: config.Settings, args: argparse.Namespace) -> int:
    import orjson

    from models.simulator import STATEMENT, CohortConfig, simulate

    options = {"start": args.start} if args.start else {}
    cohort = simulate(CohortConfig(people=args.people, days=args.days, seed=args.seed, episode_share=args.episode_share,
                                   intraday_heart_rate=args.intraday_heart_rate, **options))
    print(f"carewatch simulate: {STATEMENT}", file=sys.stderr)
    if args.labels:
        args.labels.write_bytes(orjson.dumps(cohort.labels(), option=orjson.OPT_INDENT_2))
    if args.kafka:
        from .publish import Publisher
        from .topics import EVENTS, name

        sent = 0
        started = time.monotonic()
        with Publisher(bootstrap_servers=settings.kafka.bootstrap_servers, topic=name(settings, EVENTS)) as publisher:
            for event in cohort.events():
                receipt = publisher.publish(event)
                if receipt.rejected:  # the simulator writes the contract; this would be a bug
                    print(f"carewatch simulate: refused {receipt.error}", file=sys.stderr)
                    return 1
                sent += 1
                if args.rate > 0 and sent / args.rate > time.monotonic() - started:
                    time.sleep(sent / args.rate - (time.monotonic() - started))
        print(f"published {sent} events in {time.monotonic() - started:.1f} s", file=sys.stderr)
        return 0
    out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")
    try:
        for event in cohort.events():
            out.write(orjson.dumps(event) + b"\n")
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    return 0


def _evaluate(settings: config.Settings, args: argparse.Namespace) -> int:
    import orjson

    from .report import evaluate

    if args.events:
        if not args.labels:
            print("carewatch evaluate: --events needs --labels", file=sys.stderr)
            return 2
        labels = orjson.loads(args.labels.read_bytes())
        lines = (line for line in args.events.open("rb") if line.strip())
    else:
        from models.simulator import CohortConfig, simulate

        cohort = simulate(CohortConfig(people=args.people, days=args.days, seed=args.seed))
        labels = cohort.labels()
        lines = (orjson.dumps(event) for event in cohort.events())
    result = evaluate(lines, labels, settings=settings, out=args.out, target=args.target_sensitivity)
    e = result["episodes"]
    print(f"crisis episodes alerted 3+ days early: {e['crisis_alerted_early']} of {e['crisis_episodes']} "
          f"({e['crisis_alerted_early_share']:.1%}); false alerts per 100 person-days: "
          f"{e['false_alerts_per_100_person_days']:.2f}; precision {e['precision']:.1%}")
    print(f"report: {args.out / 'report.md'} (synthetic cohort; not clinically validated)")
    return 0


def _topics(settings: config.Settings) -> int:
    from .topics import ensure, specs

    created = set(ensure(settings))
    for spec in specs(settings):
        state = "created" if spec.name in created else "exists, settings applied"
        retention = int(spec.config.get("retention.ms", -1))
        kept = "compacted" if spec.config.get("cleanup.policy") == "compact" else (
            "kept for ever" if retention < 0 else f"retention {retention // 3_600_000} h")
        print(f"{spec.name}: {spec.partitions} partitions, {kept} ({state})")
    return 0


def _publish(settings: config.Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .publish import Publisher
    from .topics import EVENTS, name

    path: Path = args.file
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        print(f"carewatch publish: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    bad = 0
    receipts = []
    bootstrap = args.bootstrap_servers or settings.kafka.bootstrap_servers
    with Publisher(
        bootstrap_servers=bootstrap, topic=name(settings, EVENTS), max_future_skew=settings.ingest.max_future_skew
    ) as publisher:
        bar = tqdm(total=len(lines), unit="event", disable=args.quiet or None, file=sys.stderr)
        for number, line in enumerate(lines, start=1):
            bar.update()
            if not line.strip():
                continue
            receipt = publisher.publish(line)
            if receipt.rejected:
                bad += 1
                bar.write(f"line {number}: {receipt.error} [{receipt.error.code}]", file=sys.stderr)
            else:
                receipts.append(receipt)
        bar.close()
    failed = sum(1 for receipt in receipts if not receipt.ok)
    sent = len(receipts) - failed
    print(f"{path}: {sent} published, {bad} bad lines not sent, {failed} not taken by the broker")
    return 1 if bad or failed else 0


if __name__ == "__main__":
    sys.exit(main())
