"""Ingest throughput and latency benchmark (not a test): prints a markdown table.

Set-up: a private Mosquitto running the shipped config, ingest
(:class:`IngestService`, in this process) on PostgreSQL and on SQLite, and a
separate publisher process (so it does not share the GIL with ingest)
driving simulated hubs, each its own MQTT connection with a QoS 1 window of
100.  Each reading's hub receive time is its publish time; latency is the
moment the rules engine has evaluated the committed reading (after commit
and PUBACK; any escalation row is written by then) minus that.

    PYTHONPATH=. python bench/ingest_throughput.py [--quick] [--stores postgres,sqlite]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.model import DeviceKind, Reading
from gateway.settings import Settings
from gateway.store import open_store
from gateway.topics import readings_topic
from ingest.service import IngestService
from rules.runtime import RulesRuntime
from simulators.loadgen import SimHub, WindowedPublisher, readings_payload, seed_fleet
from tests.support.mosquitto import Mosquitto
from tests.support.services import temporary_database

N_HUBS = 20


def publisher(host: str, port: int, creds: dict[str, str], hubs: list[SimHub], run: str,
              rate: float | None, n_msgs: int, per_msg: int, done: mp.Queue) -> None:
    """Publish ``n_msgs`` payloads round-robin over the hubs at ``rate`` msg/s (None = max)."""
    pubs = [WindowedPublisher(host, port, client_id=h.hub_id, username=h.hub_id,
                              password=creds[h.hub_id]) for h in hubs]
    t0 = time.monotonic()
    first = time.time()
    for i in range(n_msgs):
        if rate:
            ahead = t0 + i / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        k = i % len(hubs)
        ids = [f"{run}-{i}-{j}" for j in range(per_msg)]
        pubs[k].publish(readings_topic(hubs[k].hub_id),
                        readings_payload(hubs[k], DeviceKind.BP_CUFF, ids,
                                         received_at=datetime.now(UTC)))
    for p in pubs:
        p.flush()
        p.close()
    done.put(first)


class Probe:
    """Consumer that records publish->commit latency of each reading."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.last = 0.0

    def __call__(self, readings: list[Reading]) -> None:
        now = datetime.now(UTC)
        lat = [(now - r.received_at).total_seconds() for r in readings]
        with self.lock:
            self.latencies.extend(lat)
            self.last = time.time()

    def reset(self) -> None:
        with self.lock:
            self.latencies = []
            self.last = 0.0


def one_run(broker: Mosquitto, creds: dict[str, str], hubs: list[SimHub], probe: Probe,
            run: str, rate_readings: float | None, seconds: float, per_msg: int,
            fixed_total: int | None = None) -> dict[str, float]:
    n_readings = fixed_total or int((rate_readings or 0) * seconds)
    n_msgs = n_readings // per_msg
    n_readings = n_msgs * per_msg
    probe.reset()
    ctx = mp.get_context("spawn")
    done: mp.Queue = ctx.Queue()
    rate_msgs = rate_readings / per_msg if rate_readings else None
    proc = ctx.Process(
        target=publisher, args=(broker.host, broker.port, creds, hubs, run, rate_msgs, n_msgs,
                                per_msg, done))
    proc.start()
    first = done.get(timeout=600)
    proc.join()
    deadline = time.monotonic() + 120
    while len(probe.latencies) < n_readings and time.monotonic() < deadline:
        time.sleep(0.05)
    lat = sorted(probe.latencies)
    got = len(lat)
    q = statistics.quantiles(lat, n=100) if got > 1 else [float("nan")] * 99
    return {"readings": n_readings, "got": got,
            "achieved": got / max(1e-9, probe.last - first),
            "p50": q[49] * 1000, "p99": q[98] * 1000,
            "p999": lat[min(got - 1, int(got * 0.999))] * 1000 if lat else float("nan"),
            "max": lat[-1] * 1000 if lat else 0}


def drain_run(broker: Mosquitto, creds: dict[str, str], hubs: list[SimHub], probe: Probe,
              svc_factory, run: str, n_readings: int, per_msg: int) -> dict[str, float]:
    """Queue ``n_readings`` while ingest is offline, then time the drain (ingest capacity
    without a publisher competing for the CPU)."""
    probe.reset()
    ctx = mp.get_context("spawn")
    done: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=publisher, args=(broker.host, broker.port, creds, hubs, run, None,
                                               n_readings // per_msg, per_msg, done))
    proc.start()
    done.get(timeout=600)
    proc.join()
    svc = svc_factory()
    t0 = time.time()
    svc.start()
    try:
        deadline = time.monotonic() + 300
        while len(probe.latencies) < n_readings and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        svc.stop()
    return {"readings": n_readings, "got": len(probe.latencies),
            "achieved": len(probe.latencies) / max(1e-9, probe.last - t0)}


def bench_store(kind: str, url: str, broker: Mosquitto, loads: list[tuple], tmp: Path,
                rows: list[str], drains: list[tuple[int, int]]) -> None:
    store = open_store(url, pool_size=4)
    store.migrate()
    hubs = seed_fleet(store, N_HUBS, prefix=f"b{kind[:2]}")
    creds = broker.add_hub_users([h.hub_id for h in hubs])
    probe = Probe()
    # The rules engine evaluates every committed reading before the probe sees it, so the
    # latency is publish -> committed, acknowledged and evaluated (any escalation written).
    runtime = RulesRuntime(store, clock=lambda: datetime.now(UTC))

    def consume(readings: list[Reading]) -> None:
        runtime.on_committed(readings)
        probe(readings)

    settings = Settings(broker_url=broker.url(), database_url=url, data_dir=tmp,
                        mqtt_client_id=f"bench-{kind}")
    svc = IngestService(settings, store=store, consumer=consume)
    svc.start()
    try:
        one_run(broker, creds, hubs, probe, f"warm-{kind}", 2000, 1, 1)  # warm-up
        for i, (label, rate, seconds, per_msg, total) in enumerate(loads):
            r = one_run(broker, creds, hubs, probe, f"{kind}-{i}", rate, seconds, per_msg, total)
            rows.append(f"| {kind} | {label} | {per_msg} | {r['readings']:,} | "
                        f"{r['got']:,} | {r['achieved']:,.0f} | {r['p50']:.1f} | "
                        f"{r['p99']:.1f} | {r['p999']:.1f} | {r['max']:.0f} |")
            print(rows[-1], file=sys.stderr, flush=True)
        svc.stop()
        for n, per_msg in drains:
            r = drain_run(broker, creds, hubs, probe,
                          lambda: IngestService(settings, store=store, consumer=consume),
                          f"{kind}-drain-{per_msg}", n, per_msg)
            rows.append(f"| {kind} | drain queued backlog | {per_msg} | {r['readings']:,} | "
                        f"{r['got']:,} | {r['achieved']:,.0f} | - | - | - | - |")
            print(rows[-1], file=sys.stderr, flush=True)
        m = svc.metrics
        print(f"<!-- {kind}: stored {m.value('vitalgate_ingest_readings_stored_total'):.0f}, "
              f"commits {m.value('vitalgate_ingest_commit_seconds_count'):.0f}, "
              f"mean commit {1000 * m.value('vitalgate_ingest_commit_seconds_sum') / max(1, m.value('vitalgate_ingest_commit_seconds_count')):.1f} ms -->",  # noqa: E501
              file=sys.stderr, flush=True)
    finally:
        svc.stop()
        store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stores", default="postgres,sqlite")
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    args = ap.parse_args()
    s = 0.5 if args.quick else 1.0
    loads = [  # label, offered readings/s (None = as fast as possible), seconds, per msg, total
        ("100/s", 100, 10 * s, 1, None),
        ("1,000/s", 1000, 5 * s, 1, None),
        ("5,000/s", 5000, 4 * s, 1, None),
        ("10,000/s", 10000, 4 * s, 1, None),
        ("max, live (1/msg)", None, 0, 1, int(30000 * s)),
        ("10,000/s backlog", 10000, 4 * s, 10, None),
        ("max, backlog (10/msg)", None, 0, 10, int(100000 * s)),
    ]
    drains = [(int(30000 * s), 1), (int(100000 * s), 10)]
    rows = ["| store | offered load | readings/msg | published | committed | "
            "readings/s | p50 ms | p99 ms | p99.9 ms | max ms |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    print("\n".join(rows), file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmpdir, Mosquitto() as broker:
        tmp = Path(tmpdir)
        for kind in args.stores.split(","):
            if kind == "postgres":
                with temporary_database() as url:
                    bench_store(kind, url, broker, loads, tmp, rows, drains)
            else:
                bench_store(kind, f"sqlite:///{tmp / 'bench.db'}", broker, loads, tmp, rows,
                            drains)
    print("## Ingest + rules: throughput and latency at fixed offered loads\n")
    print("Latency: hub receive (= publish) time to the moment the rules engine has evaluated "
          "the committed reading (any escalation row written by then). "
          f"{os.cpu_count()} cores; Mosquitto (shipped config), PostgreSQL, ingest + rules "
          "and a separate publisher process on the same host. Targets: p99 publish-to-"
          "escalation <= 100 ms at 1,000 readings/s; >= 10,000 readings/s into PostgreSQL.\n")
    print("\n".join(rows))
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
