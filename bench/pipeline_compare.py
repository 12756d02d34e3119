"""Side by side, in one run: the broker's ceiling, a naive subscriber, and Vitalgate.

All three receive the same payloads (one reading per QoS 1 message, ~330 bytes)
from the same windowed publishers through the same Mosquitto (the shipped
config, on a private port):

1. **broker ceiling** -- a paho subscriber that only counts messages;
2. **naive baseline** -- the 30-line subscriber many people write first:
   ``json.loads`` and one ``INSERT`` + commit per reading into PostgreSQL;
3. **Vitalgate** -- the ingest service (validate, dedupe, batch COPY commit,
   acknowledge after commit) with the rules engine evaluating every committed
   reading, into PostgreSQL and into SQLite.

Throughput is readings per second from the first publish to the last reading
handled.  Prints a markdown section with the ratios the issue sets as targets.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from gateway.model import DeviceKind
from gateway.settings import load_settings
from gateway.store import open_store
from ingest.service import IngestService
from rules.runtime import RulesRuntime
from simulators.loadgen import WindowedPublisher, readings_payload, seed_fleet
from tests.support.mosquitto import Mosquitto
from tests.support.services import temporary_database

N = int(os.environ.get("BENCH_READINGS", "40000"))
N_NAIVE = int(os.environ.get("BENCH_NAIVE_READINGS", "8000"))
HUBS = 4


def publish_all(broker: Mosquitto, hubs: list, n: int, tag: str) -> float:
    """Publish n readings spread over the hubs (one thread per hub); return start time."""
    creds = broker.add_hub_users([h.hub_id for h in hubs])
    per = n // len(hubs)
    start = time.perf_counter()

    def run(hub) -> None:  # type: ignore[no-untyped-def]
        with WindowedPublisher(broker.host, broker.port, client_id=f"{tag}-{hub.hub_id}",
                               username=hub.hub_id, password=creds[hub.hub_id]) as pub:
            now = datetime.now(UTC)
            topic = f"vitalgate/v1/hubs/{hub.hub_id}/readings"
            for i in range(per):
                pub.publish(topic, readings_payload(hub, DeviceKind.BP_CUFF,
                                                    [f"{tag}-{hub.hub_id}-{i}"],
                                                    measured_at=now, received_at=now))
            pub.flush(120)

    threads = [threading.Thread(target=run, args=(h,)) for h in hubs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return start


class Counter:
    """Counts messages on a subscriber; signals when ``target`` is reached."""

    def __init__(self, target: int) -> None:
        self.n = 0
        self.target = target
        self.done = threading.Event()
        self.last = 0.0
        self.lock = threading.Lock()

    def add(self, k: int = 1) -> None:
        with self.lock:
            self.n += k
            self.last = time.perf_counter()
            if self.n >= self.target:
                self.done.set()


def subscriber(broker: Mosquitto, client_id: str, on_payload) -> mqtt.Client:  # type: ignore[no-untyped-def]
    user, pw = broker.service_credentials
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    c.username_pw_set(user, pw)
    ready = threading.Event()
    c.on_connect = lambda cl, *_: (cl.subscribe("vitalgate/v1/hubs/+/readings", qos=1),
                                   ready.set())
    c.on_message = lambda cl, ud, msg: on_payload(msg.payload)
    c.connect(broker.host, broker.port)
    c.loop_start()
    ready.wait(10)
    time.sleep(0.3)
    return c


def ceiling(broker: Mosquitto, hubs: list) -> float:
    counter = Counter(N)
    sub = subscriber(broker, "bench-ceiling", lambda _p: counter.add())
    start = publish_all(broker, hubs, N, "ceil")
    counter.done.wait(300)
    sub.loop_stop()
    sub.disconnect()
    return counter.n / (counter.last - start)


NAIVE_SQL = ("CREATE TABLE IF NOT EXISTS naive (id text primary key, hub text, serial text, "
             "measured_at timestamptz, sys float8, dia float8, pulse float8)")


def naive(broker: Mosquitto, hubs: list, pg_url: str) -> float:
    # The naive subscriber: one INSERT and commit per reading.
    conn = psycopg.connect(pg_url, autocommit=True)
    conn.execute(NAIVE_SQL)
    counter = Counter(N_NAIVE)

    def on_payload(payload: bytes) -> None:
        doc = json.loads(payload)
        for r in doc["readings"]:
            v = {x["metric"]: x["value"] for x in r["values"]}
            conn.execute("INSERT INTO naive VALUES (%s, %s, %s, %s, %s, %s, %s) "
                         "ON CONFLICT DO NOTHING",
                         (r["id"], doc["hub_id"], doc["device"]["serial"], r["measured_at"],
                          v.get("systolic"), v.get("diastolic"), v.get("pulse")))
            counter.add()

    sub = subscriber(broker, "bench-naive", on_payload)
    start = publish_all(broker, hubs, N_NAIVE, "naive")
    counter.done.wait(600)
    sub.loop_stop()
    sub.disconnect()
    conn.close()
    return counter.n / (counter.last - start)


def vitalgate(broker: Mosquitto, db_url: str, tag: str) -> float:
    store = open_store(db_url)
    store.migrate()
    hubs = seed_fleet(store, HUBS, prefix=f"v{tag}")
    user, pw = broker.service_credentials
    settings = load_settings(database_url=db_url, broker_url=broker.url(user, pw),
                             mqtt_client_id=f"bench-vitalgate-{tag}")
    counter = Counter(N)
    runtime = RulesRuntime(store, clock=lambda: datetime.now(UTC))

    def consume(readings) -> None:  # type: ignore[no-untyped-def]
        runtime.on_committed(readings)
        counter.add(len(readings))

    svc = IngestService(settings, store=store, consumer=consume)
    svc.start()
    time.sleep(0.5)
    start = publish_all(broker, hubs, N, f"vg{tag}")
    counter.done.wait(600)
    rate = counter.n / (counter.last - start)
    svc.stop()
    assert store.count_readings() == N, (store.count_readings(), N)
    store.close()
    return rate


def main() -> None:
    with Mosquitto() as broker, temporary_database() as pg_naive, \
            temporary_database() as pg_vg, temporary_database() as _unused:
        scratch = open_store(pg_naive)
        scratch.migrate()
        hubs = seed_fleet(scratch, HUBS, prefix="b")
        scratch.close()
        print("broker ceiling...", file=sys.stderr)
        top = ceiling(broker, hubs)
        print("naive...", file=sys.stderr)
        base = naive(broker, hubs, pg_naive)
        print("vitalgate postgres...", file=sys.stderr)
        vg_pg = vitalgate(broker, pg_vg, "pg")
        print("vitalgate sqlite...", file=sys.stderr)
        sqlite_path = f"/tmp/vitalgate-bench-{os.getpid()}.db"
        vg_sq = vitalgate(broker, f"sqlite:///{sqlite_path}", "sq")
        os.unlink(sqlite_path)
    print("## Throughput: broker ceiling vs naive subscriber vs Vitalgate\n")
    print(f"One reading per QoS 1 message, {HUBS} publishing hubs with a window of 100 "
          f"unacknowledged messages each, shipped Mosquitto config on loopback; "
          f"{N:,} readings ({N_NAIVE:,} for the naive subscriber).\n")
    print("| pipeline | readings/s | vs broker ceiling | vs naive |")
    print("| --- | --- | --- | --- |")
    print(f"| broker ceiling (count only) | {top:,.0f} | 100% | {top / base:.1f}x |")
    print(f"| naive: INSERT + commit per reading (PostgreSQL) | {base:,.0f} | "
          f"{base / top:.0%} | 1.0x |")
    print(f"| Vitalgate ingest + rules, PostgreSQL | {vg_pg:,.0f} | {vg_pg / top:.0%} | "
          f"{vg_pg / base:.1f}x |")
    print(f"| Vitalgate ingest + rules, SQLite | {vg_sq:,.0f} | {vg_sq / top:.0%} | "
          f"{vg_sq / base:.1f}x |")
    met = (vg_pg >= 10_000, vg_pg >= 0.5 * top, vg_pg >= 10 * base)
    print("\nAll publishers run as threads of this one Python process, so the \"ceiling\" is "
          "what these publishers can offer through the broker, not Mosquitto's own limit; "
          "`bench/ingest_throughput.py` drives ingest from a separate publisher process.")
    print(f"\nTargets (PostgreSQL): >= 10,000 readings/s: {'met' if met[0] else '**missed**'}; "
          f">= 50% of the broker ceiling: {'met' if met[1] else '**missed**'}; "
          f">= 10x naive: {'met' if met[2] else '**missed**'}.\n")


if __name__ == "__main__":
    main()
