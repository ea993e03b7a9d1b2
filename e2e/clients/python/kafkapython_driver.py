"""Drives kafka-python (pure Python) through Strait's client matrix.

kafka-python compresses with optional modules: gzip with the standard library, snappy
with python-snappy, lz4 with lz4, zstd with zstandard (Debian's python3-snappy,
python3-lz4, python3-zstandard). Version 2.0.2 has no transactional producer and no
IncrementalAlterConfigs."""

import json
import sys
import threading
import time

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from common import key, main, out, print_record, specials, value

TIMEOUT = 60


def admin_client(bootstrap):
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT * 1000)


def metadata(bootstrap, topic):
    adm = admin_client(bootstrap)
    brokers = [b["node_id"] for b in adm.describe_cluster()["brokers"]]
    (t,) = adm.describe_topics([topic])
    if t["error_code"] != 0:
        raise RuntimeError("describe %s: error %d" % (topic, t["error_code"]))
    parts = []
    for p in t["partitions"]:
        if p["error_code"] != 0:
            raise RuntimeError("partition %d: error %d" % (p["partition"], p["error_code"]))
        parts.append({"id": p["partition"], "leader": p["leader"], "replicas": p["replicas"], "isr": p["isr"]})
    adm.close()
    out(json.dumps({"brokers": brokers, "partitions": parts}))


def check_topic_errors(resp):
    for name, code, *rest in resp.topic_errors:
        if code != 0:
            raise RuntimeError("%s: error %d %s" % (name, code, rest))


def create(bootstrap, topic, partitions, rf):
    adm = admin_client(bootstrap)
    check_topic_errors(adm.create_topics([NewTopic(topic, int(partitions), int(rf))], timeout_ms=TIMEOUT * 1000))
    adm.close()


def delete(bootstrap, topic):
    adm = admin_client(bootstrap)
    resp = adm.delete_topics([topic], timeout_ms=TIMEOUT * 1000)
    for name, code in resp.topic_error_codes:
        if code != 0:
            raise RuntimeError("delete %s: error %d" % (name, code))
    adm.close()


def producer(bootstrap, **kwargs):
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_block_ms=TIMEOUT * 1000, **kwargs)


def produce(bootstrap, topic, codec, n):
    p = producer(bootstrap, compression_type=None if codec == "none" else codec, linger_ms=5)
    futures = [p.send(topic, key=key(i).encode(), value=value(i).encode()) for i in range(int(n))]
    p.flush(TIMEOUT)
    for f in futures:
        f.get(TIMEOUT)  # raises the delivery error, if any
    p.close()


def read_all(bootstrap, topic, n, handle):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest")
    c.assign([TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic))])
    c.seek_to_beginning()
    deadline = time.time() + TIMEOUT
    while n > 0:
        if time.time() > deadline:
            raise TimeoutError("%d messages still to read" % n)
        for msgs in c.poll(timeout_ms=500, max_records=min(n, 1000)).values():
            for m in msgs:
                handle(m)
                n -= 1
    c.close()


def consume(bootstrap, topic, n):
    read_all(bootstrap, topic, int(n), lambda m: out("%d %d %s %s" % (
        m.partition, m.offset, m.key.decode(), m.value.decode())))


def group(bootstrap, topic, group_id, n):
    """Two members of one group read n messages between them, each committing
    synchronously after every poll that returned some, then close (leaving the group)."""
    n, seen, lock, errors = int(n), set(), threading.Lock(), []
    done = threading.Event()

    def member(i):
        c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group_id, client_id="member-%d" % i,
                          enable_auto_commit=False, auto_offset_reset="earliest")
        deadline = time.time() + TIMEOUT
        try:
            while not done.is_set() and time.time() < deadline:
                batch = [m for msgs in c.poll(timeout_ms=200, max_records=500).values() for m in msgs]
                with lock:
                    for m in batch:
                        out("%d %d %d" % (i, m.partition, m.offset))
                if batch:
                    c.commit()
                    with lock:
                        seen.update((m.partition, m.offset) for m in batch)
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


def config_entries(responses):
    """{(resource type, name): {config name: value}} of DescribeConfigs responses."""
    result = {}
    for resp in responses:
        for code, message, restype, name, entries in resp.resources:
            if code != 0:
                raise RuntimeError("describe configs %s: error %d %s" % (name, code, message))
            result[(restype, name)] = {e[0]: e[1] for e in entries}
    return result


def admin(bootstrap, topic, group_id, broker):
    adm, result = admin_client(bootstrap), {}
    # kafka-python 2.0.2 has AlterConfigs only (not the incremental one).
    resp = adm.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "3600000"})])
    for code, message, _, name in resp.resources:
        if code != 0:
            raise RuntimeError("alter configs %s: error %d %s" % (name, code, message))
    configs = config_entries(adm.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic),
                                                   ConfigResource(ConfigResourceType.BROKER, broker)]))
    result["retention_ms"] = configs[(ConfigResourceType.TOPIC.value, topic)]["retention.ms"]
    result["broker_configs"] = configs[(ConfigResourceType.BROKER.value, broker)]
    result["groups"] = [g for g, _ in adm.list_consumer_groups()]
    result["group_state"] = adm.describe_consumer_groups([group_id])[0].state
    committed = adm.list_consumer_group_offsets(group_id)
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    ends = c.end_offsets(list(committed))
    result["offsets"] = {str(tp.partition): om.offset for tp, om in committed.items() if tp.topic == topic}
    result["lag"] = {str(tp.partition): ends[tp] - om.offset for tp, om in committed.items() if tp.topic == topic}
    c.close()
    adm.close()
    out(json.dumps(result))


def records(bootstrap, topic):
    p = producer(bootstrap)
    for k, v, headers, ts in specials():
        p.send(topic, key=None if k is None else k.encode(), value=v, headers=headers, partition=0,
               timestamp_ms=ts).get(TIMEOUT)
    p.close()
    read_all(bootstrap, topic, len(specials()), lambda m: print_record(m.key, m.value, m.headers, m.timestamp))


if __name__ == "__main__":
    main({"metadata": metadata, "create": create, "delete": delete, "produce": produce, "consume": consume,
          "group": group, "admin": admin, "records": records},
         kafka.__version__)
    sys.stdout.flush()
