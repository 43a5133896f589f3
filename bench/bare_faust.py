"""The baseline: a bare Faust agent that only counts records, nothing else.

Usage: bare_faust.py BOOTSTRAP TOPIC APP_ID PORT DATA_DIR
Serves the count at http://127.0.0.1:PORT/count so the benchmark reads both
processes the same way.
"""

import sys

import faust

bootstrap, topic_name, app_id, port, data_dir = sys.argv[1:6]
app = faust.App(
    app_id,
    broker=f"kafka://{bootstrap}",
    store="memory://",
    datadir=data_dir,
    web_port=int(port),
    web_bind="127.0.0.1",
    web_host="127.0.0.1",
    consumer_auto_offset_reset="earliest",
    autodiscover=False,
)
topic = app.topic(topic_name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
count = 0


@app.agent(topic)
async def counter(stream):
    global count
    async for _ in stream.events():
        count += 1


@app.page("/count")
async def show(self, request):
    return self.json({"count": count})


@app.page("/readyz")
async def ready(self, request):
    return self.json({"ready": not app.rebalancing}, status=200 if not app.rebalancing else 503)


if __name__ == "__main__":
    faust.Worker(app, loglevel="warning").execute_from_commandline()
