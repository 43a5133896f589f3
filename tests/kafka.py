"""Reading and writing the real broker from tests (kafka-python)."""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from streams import config, topics


@dataclass
class Topics:
    bootstrap: str
    prefix: str

    def settings(self) -> config.Settings:
        return config.load(environ={"CAREWATCH_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
                                    "CAREWATCH_KAFKA__TOPIC_PREFIX": self.prefix})

    def create(self) -> None:
        topics.ensure(self.settings())

    def delete(self, *starting: str) -> None:
        """Delete every topic whose name starts with one of `starting` (the broker finishes in the background)."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            names = [t for t in admin.list_topics() if t.startswith(starting)]
            if names:
                admin.delete_topics(names)
        finally:
            admin.close()

    def name(self, topic: str) -> str:
        return self.prefix + topic

    def send_raw(self, records: list[tuple[bytes | None, bytes]], topic: str = topics.EVENTS) -> None:
        """Records as an app that skips the SDK would send them: no validation."""
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        for key, value in records:
            producer.send(self.name(topic), value=value, key=key)
        producer.flush()
        producer.close()

    def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            name = self.name(topic)
            return consumer.end_offsets([TopicPartition(name, p) for p in consumer.partitions_for_topic(name)])
        finally:
            consumer.close()

    def lag(self, group: str, topic: str) -> int:
        """Records on `topic` past the offsets `group` has committed (faust commits every few seconds)."""
        ends = self.end_offsets(topic)
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False)
        try:
            return sum(end - (consumer.committed(tp) or 0) for tp, end in ends.items())
        finally:
            consumer.close()

    def count(self, topic: str) -> int:
        return sum(self.end_offsets(topic).values())

    def read_all(self, topic: str) -> list:
        """Every record now on the topic, from the beginning to the end offsets."""
        ends = {tp: end for tp, end in self.end_offsets(topic).items() if end > 0}
        if not ends:
            return []
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        records = []
        try:
            consumer.assign(list(ends))
            consumer.seek_to_beginning(*ends)
            while any(consumer.position(tp) < end for tp, end in ends.items()):
                for batch in consumer.poll(timeout_ms=1000).values():
                    records.extend(batch)
        finally:
            consumer.close()
        return records
