"""The original demo's design in its own language, for `npm run bench` only:
pandas reads the Parquet file, a kafka-python producer sends each row as JSON
without a key and flushes after every message, and a consumer inserts and
commits one row at a time into a table without a key (psycopg2). Prints one
JSON line with the figures. Configuration comes from the environment that
bench/run.mjs sets; nothing here is for use."""

import json
import os
import sys
import threading
import time
import uuid

import pandas as pd
import psycopg2
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

brokers = os.environ["BENCH_BROKERS"].split(",")
rows = int(os.environ["BENCH_ROWS"])
frame = pd.read_parquet(os.environ["BENCH_FILE"]).head(rows)
topic = f"bench-demo-py-{uuid.uuid4().hex[:8]}"

admin = KafkaAdminClient(bootstrap_servers=brokers)
admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])

db = psycopg2.connect(os.environ["BENCH_PG_DSN"])
with db.cursor() as cur:
    cur.execute("create schema if not exists bench_demo_py")
    cur.execute("drop table if exists bench_demo_py.synthetic_data")
    cur.execute(
        'create table bench_demo_py.synthetic_data (id text, "timestamp" timestamp, stock_price double precision, sales_trend double precision)'
    )
db.commit()

inserted = 0
last_insert = 0.0
done = threading.Event()


def consume():
    global inserted, last_insert
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=brokers,
        auto_offset_reset="earliest",
        group_id=f"{topic}-consumer",
        value_deserializer=lambda v: json.loads(v.decode("utf-8")),
    )
    conn = psycopg2.connect(os.environ["BENCH_PG_DSN"])
    for message in consumer:
        row = message.value
        with conn.cursor() as cur:
            cur.execute(
                'insert into bench_demo_py.synthetic_data (id, "timestamp", stock_price, sales_trend) values (%s, %s, %s, %s)',
                (row["id"], row["timestamp"], row["stock_price"], row["sales_trend"]),
            )
        conn.commit()
        inserted += 1
        last_insert = time.perf_counter()
        if inserted >= len(frame):
            break
    consumer.close()
    conn.close()
    done.set()


thread = threading.Thread(target=consume, daemon=True)
thread.start()

producer = KafkaProducer(bootstrap_servers=brokers, value_serializer=lambda v: json.dumps(v).encode("utf-8"))
t0 = time.perf_counter()
for record in frame.itertuples(index=False):
    producer.send(
        topic,
        {
            "id": str(record.id),
            "timestamp": pd.Timestamp(record.timestamp).isoformat(),
            "stock_price": float(record.stock_price),
            "sales_trend": float(record.sales_trend),
        },
    )
    producer.flush()
producer_seconds = time.perf_counter() - t0
done.wait(600)
seconds = last_insert - t0
producer.close()

admin.delete_topics([topic])
admin.close()
with db.cursor() as cur:
    cur.execute("drop schema bench_demo_py cascade")
db.commit()
db.close()

json.dump(
    {
        "rows": len(frame),
        "inserted": inserted,
        "producerRowsPerSecond": len(frame) / producer_seconds,
        "endToEndSeconds": seconds,
        "endToEndRowsPerSecond": inserted / seconds if seconds > 0 else None,
    },
    sys.stdout,
)
print()
