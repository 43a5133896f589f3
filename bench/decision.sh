#!/usr/bin/env bash
# The decision core's bar (issue 4): a cohort of 2,000 people x 120 days, daily
# summaries, seed 2026 (not used in training: 11, 12; nor tuning: 31), replayed
# offline through the worker's code path. Writes bench/results/evaluation/.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m streams.cli evaluate --people 2000 --days 120 --seed 2026 --out bench/results/evaluation "$@"
