"""Drives Python confluent_kafka (over librdkafka) through Strait's client matrix."""

import json
import sys
import threading
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from common import key, main, out, print_record, specials, value

TIMEOUT = 60


def metadata(bootstrap, topic):
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=TIMEOUT)
    parts = []
    for p in md.topics[topic].partitions.values():
        if p.error is not None:
            raise KafkaException(p.error)
        parts.append({"id": p.id, "leader": p.leader, "replicas": p.replicas, "isr": p.isrs})
    out(json.dumps({"brokers": list(md.brokers), "partitions": parts}))


def create(bootstrap, topic, partitions, rf):
    adm = AdminClient({"bootstrap.servers": bootstrap})  # kept: its futures die with it
    fs = adm.create_topics([NewTopic(topic, num_partitions=int(partitions), replication_factor=int(rf))])
    fs[topic].result(TIMEOUT)


def delete(bootstrap, topic):
    adm = AdminClient({"bootstrap.servers": bootstrap})
    adm.delete_topics([topic])[topic].result(TIMEOUT)


def produce_all(p, sends):
    """Produces each (args, kwargs) and fails on any delivery error."""
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(err)
    for args, kwargs in sends:
        while True:
            try:
                p.produce(*args, on_delivery=report, **kwargs)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    if p.flush(TIMEOUT) != 0 or errors:
        raise KafkaException(errors[0] if errors else "messages not delivered")


def produce(bootstrap, topic, codec, n):
    p = Producer({"bootstrap.servers": bootstrap, "compression.codec": codec, "linger.ms": 5, "acks": "all"})
    produce_all(p, [((topic,), {"key": key(i), "value": value(i)}) for i in range(int(n))])


def read_all(bootstrap, topic, n, handle):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-" + topic,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    md = c.list_topics(topic, timeout=TIMEOUT)
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.topics[topic].partitions])
    deadline = time.time() + TIMEOUT
    while n > 0:
        if time.time() > deadline:
            raise TimeoutError("%d messages still to read" % n)
        for m in c.consume(num_messages=min(n, 1000), timeout=0.5):
            if m.error():
                raise KafkaException(m.error())
            handle(m)
            n -= 1
    c.close()


def consume(bootstrap, topic, n):
    read_all(bootstrap, topic, int(n), lambda m: out("%d %d %s %s" % (
        m.partition(), m.offset(), m.key().decode(), m.value().decode())))


def group(bootstrap, topic, group_id, n):
    """Two members of one group read n messages between them, each committing
    synchronously after every batch, then close (leaving the group)."""
    n, seen, lock, errors = int(n), set(), threading.Lock(), []
    done = threading.Event()

    def member(i):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "client.id": "member-%d" % i,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        c.subscribe([topic])
        deadline = time.time() + TIMEOUT
        try:
            while not done.is_set() and time.time() < deadline:
                msgs = c.consume(num_messages=500, timeout=0.2)
                for m in msgs:
                    if m.error():
                        raise KafkaException(m.error())
                    with lock:
                        out("%d %d %d" % (i, m.partition(), m.offset()))
                if msgs:
                    c.commit(asynchronous=False)
                    with lock:
                        seen.update((m.partition(), m.offset()) for m in msgs)
                        if len(seen) >= n:
                            done.set()
        except Exception as e:  # reported by the main thread
            errors.append(e)
            done.set()
        finally:
            c.close()
    threads = [threading.Thread(target=member, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    if len(seen) < n:
        raise TimeoutError("read %d of %d messages" % (len(seen), n))


def admin(bootstrap, topic, group_id, broker):
    adm, result = AdminClient({"bootstrap.servers": bootstrap}), {}
    # confluent_kafka 1.7 has AlterConfigs only (not the incremental one).
    for f in adm.alter_configs([ConfigResource("topic", topic, set_config={"retention.ms": "3600000"})]).values():
        f.result(TIMEOUT)
    fs = adm.describe_configs([ConfigResource("topic", topic), ConfigResource("broker", broker)])
    for res, f in fs.items():
        entries = f.result(TIMEOUT)
        if res.restype == ConfigResource.Type.TOPIC:
            result["retention_ms"] = entries["retention.ms"].value
        else:
            result["broker_configs"] = {name: e.value for name, e in entries.items()}
    result["groups"] = [g.id for g in adm.list_groups(timeout=TIMEOUT)]
    result["group_state"] = adm.list_groups(group_id, timeout=TIMEOUT)[0].state
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False})
    committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=TIMEOUT)
    result["offsets"], result["lag"] = {}, {}
    for tp in committed:
        high = c.get_watermark_offsets(tp, timeout=TIMEOUT)[1]
        result["offsets"][str(tp.partition)] = tp.offset
        result["lag"][str(tp.partition)] = high - tp.offset
    c.close()
    out(json.dumps(result))


def records(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for k, v, headers, ts in specials():
        kwargs = {"key": k, "value": v, "headers": headers, "partition": 0}
        if ts is not None:
            kwargs["timestamp"] = ts
        produce_all(p, [((topic,), kwargs)])
    read_all(bootstrap, topic, len(specials()), lambda m: print_record(
        m.key(), m.value(), m.headers(), m.timestamp()[1]))


def txn(bootstrap, topic):
    """Commits a transaction of c0..c4 and aborts one of a0..a4."""
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "confluent-python-txn"})
    p.init_transactions(TIMEOUT)
    for prefix in ("c", "a"):
        p.begin_transaction()
        produce_all(p, [((topic,), {"value": "%s%d" % (prefix, i)}) for i in range(5)])
        if prefix == "c":
            p.commit_transaction(TIMEOUT)
        else:
            p.abort_transaction(TIMEOUT)


if __name__ == "__main__":
    main({"metadata": metadata, "create": create, "delete": delete, "produce": produce, "consume": consume,
          "group": group, "admin": admin, "records": records, "txn": txn},
         "%s (librdkafka %s)" % (confluent_kafka.version()[0], confluent_kafka.libversion()[0]))
    sys.stdout.flush()
