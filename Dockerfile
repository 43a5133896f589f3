# carewatch: the worker, the gateway, the simulator and the CLI in one image.
# docker build -t carewatch . ; docker run --rm carewatch --help
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 carewatch
WORKDIR /opt/carewatch
COPY pyproject.toml requirements.lock README.md ./
COPY streams ./streams
COPY models ./models
COPY alerts ./alerts
COPY console ./console
RUN pip install --no-cache-dir -c requirements.lock '.[grafana]'
COPY infra/carewatch.yaml /etc/carewatch/carewatch.yaml

USER carewatch
ENV CAREWATCH_WORKER__DATA_DIR=/var/lib/carewatch
VOLUME ["/var/lib/carewatch"]
EXPOSE 6066 8080
ENTRYPOINT ["carewatch"]
CMD ["--help"]
