"""Exit 0 once a Kafka broker answers a metadata request, 1 after a deadline.

Usage: ready.py HOST:PORT SECONDS. Used by kafka.sh; needs kafka-python.
A plain TCP connect comes first: kafka-python's bootstrap blocks for long
seconds when nothing listens, which would make every "is it up?" slow.
"""
import socket
import sys
import time

from kafka import KafkaAdminClient
from kafka.errors import KafkaError


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def answers(bootstrap: str) -> bool:
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.describe_cluster()
        return True
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        admin.close()


def main() -> int:
    bootstrap, seconds = sys.argv[1], float(sys.argv[2])
    host, port = bootstrap.rsplit(":", 1)
    deadline = time.monotonic() + seconds
    while True:
        if listening(host, int(port)) and answers(bootstrap):
            return 0
        if time.monotonic() >= deadline:
            return 1
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
