#!/usr/bin/env python3
"""A standard Kafka client (confluent-kafka, i.e. librdkafka) for trials and measurements, installed by
`deploy/local/kafka.sh client`:

  kafka_client.py produce BROKER TOPIC FILE...   # one message per non-blank line (.gz read too), round-robin
                                                  # over partitions; prints messages, bytes, seconds, rate
  kafka_client.py count BROKER TOPIC [--group G]  # end offsets per partition and, with --group, its commits
  kafka_client.py consume BROKER TOPIC [--max N]  # print messages (value, then headers) from the beginning
  kafka_client.py drain BROKER TOPIC              # read every message as fast as librdkafka can (the broker's
                                                  # limit to compare vigil's Kafka input with); prints the rate
"""
import gzip
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def lines(paths):
    for path in paths:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            for line in f:
                line = line.rstrip(b"\r\n")
                if line.strip():
                    yield line


def produce(broker, topic, paths):
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 20, "batch.num.messages": 10000,
                         "enable.idempotence": True, "compression.type": "lz4"})
    failures = []

    def report(err, _msg):
        if err is not None:
            failures.append(err)

    count = size = 0
    start = time.monotonic()
    for line in lines(paths):
        while True:
            try:
                producer.produce(topic, line, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        size += len(line)
        producer.poll(0)
    producer.flush(120)
    seconds = time.monotonic() - start
    if failures:
        sys.exit(f"{len(failures)} messages failed, first: {failures[0]}")
    print(f"produced {count} messages, {size} bytes in {seconds:.2f}s "
          f"({count / max(seconds, 1e-9):.0f} msg/s, {size / max(seconds, 1e-9) / 1e6:.1f} MB/s) to {topic}")


def count(broker, topic, group):
    consumer = Consumer({"bootstrap.servers": broker, "group.id": group or "vigil-count", "enable.auto.commit": False})
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = sorted(metadata.topics[topic].partitions)
    committed = {}
    if group:
        for tp in consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10):
            committed[tp.partition] = tp.offset
    total = 0
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        total += high - low
        extra = f" committed={committed.get(p)}" if group else ""
        print(f"{topic}/{p} low={low} high={high}{extra}")
    print(f"{topic} messages={total}")
    consumer.close()


def consume(broker, topic, limit):
    consumer = Consumer({"bootstrap.servers": broker, "group.id": f"vigil-peek-{time.time_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen = 0
    idle = time.monotonic()
    while seen < limit and time.monotonic() - idle < 5:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        idle = time.monotonic()
        seen += 1
        print(msg.value().decode("utf-8", "replace"))
        for key, value in msg.headers() or []:
            print(f"  {key}: {value.decode('utf-8', 'replace') if value else ''}")
    consumer.close()


def drain(broker, topic):
    consumer = Consumer({"bootstrap.servers": broker, "group.id": f"vigil-drain-{time.time_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "queued.max.messages.kbytes": 32768})
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = sorted(metadata.topics[topic].partitions)
    total = sum(high - low for low, high in
                (consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions))
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    seen = size = 0
    start = time.monotonic()
    while seen < total:
        for msg in consumer.consume(num_messages=10000, timeout=1.0):
            if msg.error():
                continue
            seen += 1
            size += len(msg.value())
    seconds = time.monotonic() - start
    consumer.close()
    print(f"drained {seen} messages, {size} bytes in {seconds:.2f}s "
          f"({seen / max(seconds, 1e-9):.0f} msg/s, {size / max(seconds, 1e-9) / 1e6:.1f} MB/s) from {topic}")


def main(argv):
    if len(argv) >= 4 and argv[1] == "produce":
        produce(argv[2], argv[3], argv[4:])
    elif len(argv) >= 4 and argv[1] == "count":
        group = argv[argv.index("--group") + 1] if "--group" in argv else None
        count(argv[2], argv[3], group)
    elif len(argv) >= 4 and argv[1] == "drain":
        drain(argv[2], argv[3])
    elif len(argv) >= 4 and argv[1] == "consume":
        limit = int(argv[argv.index("--max") + 1]) if "--max" in argv else 10
        consume(argv[2], argv[3], limit)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
