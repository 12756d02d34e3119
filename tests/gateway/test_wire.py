"""Wire contract decoder: good payloads decode; bad ones name the field, never raise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.topics import Topic, TopicError, readings_topic, subscription
from gateway.wire import (
    WireError,
    WireReadings,
    decode_devices,
    decode_readings,
    decode_status,
    encode,
)


def good() -> dict[str, Any]:
    return {
        "schema": "vitalgate.readings/1",
        "hub_id": "hub-0001",
        "sent_at": "2026-03-01T12:00:05Z",
        "device": {"serial": "5CF3-0001", "kind": "bp_cuff", "model": "UA-651BLE",
                   "manufacturer": "A&D", "clock_offset_s": -42.0, "battery": 81},
        "readings": [{
            "id": "bp:5CF3-0001:2026-03-01T06:59:00:125/80/102/64",
            "device_time": "2026-03-01T06:59:00",
            "measured_at": "2026-03-01T11:59:42Z",
            "clock_offset_s": -42.0,
            "received_at": "2026-03-01T12:00:01Z",
            "values": [{"metric": "systolic", "value": 125, "unit": "mmHg"},
                       {"metric": "diastolic", "value": 80, "unit": "mmHg"},
                       {"metric": "mean_arterial", "value": 102, "unit": "mmHg"},
                       {"metric": "pulse", "value": 64, "unit": "/min"}],
            "flags": ["irregular_pulse"],
        }],
    }


def test_good_payload_decodes() -> None:
    batch = decode_readings(json.dumps(good()).encode(), expected_hub="hub-0001")
    assert isinstance(batch, WireReadings)
    assert batch.readings[0].values[0].value == 125
    assert decode_readings(encode(batch)) == batch


@pytest.mark.parametrize(("mutate", "field", "code"), [
    (lambda d: d.pop("hub_id"), "hub_id", "schema"),
    (lambda d: d.update(schema="vitalgate.readings/2"), "schema", "schema_version"),
    (lambda d: d["readings"][0].pop("received_at"), "readings[0].received_at", "schema"),
    (lambda d: d["readings"][0]["values"][1].update(value="eighty"),
     "readings[0].values[1].value", "schema"),
    (lambda d: d["readings"][0]["values"][1].update(unit="furlong"),
     "readings[0].values[1].unit", "schema"),
    (lambda d: d["readings"][0].update(received_at="2026-03-01T12:00:01"),
     "readings[0].received_at", "schema"),
    (lambda d: d["device"].update(kind="toaster"), "device.kind", "schema"),
    (lambda d: d["device"].update(battery=140), "device.battery", "schema"),
    (lambda d: d.update(readings=[]), "readings", "schema"),
    (lambda d: d.update(extra="x"), "extra", "schema"),
    (lambda d: d["readings"][0]["values"].append(
        {"metric": "systolic", "value": 1, "unit": "mmHg"}), "readings[0].values", "schema"),
    (lambda d: d.update(hub_id="other"), "hub_id", "hub_mismatch"),
])
def test_bad_field_is_named(mutate: Any, field: str, code: str) -> None:
    doc = good()
    mutate(doc)
    err = decode_readings(json.dumps(doc).encode(), expected_hub="hub-0001")
    assert isinstance(err, WireError)
    assert err.field == field, err
    assert err.code == code


@pytest.mark.parametrize(("payload", "code"), [
    (b"not json", "not_json"),
    (b'{"schema": "vitalgate.readings/1", "x": NaN}', "not_json"),
    (b"[1, 2]", "schema"),
    (b"[" * 100_000, "not_json"),
    (b" " * (1024 * 1024 + 1), "too_large"),
    ("\udcff".encode("utf-8", "surrogatepass"), "not_json"),
])
def test_garbage_is_a_wire_error(payload: bytes, code: str) -> None:
    err = decode_readings(payload)
    assert isinstance(err, WireError) and err.code == code, err


def test_nan_value_refused() -> None:
    text = json.dumps(good()).replace('"value": 80', '"value": NaN')
    err = decode_readings(text.encode())
    assert isinstance(err, WireError) and err.code == "not_json"


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                      children, max_size=4),
    max_leaves=20,
)


@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    assert isinstance(decode_readings(data), WireError)


@given(st.dictionaries(st.sampled_from(["schema", "hub_id", "device", "readings", "sent_at"]),
                       json_values))
def test_random_documents_never_raise(doc: dict[str, Any]) -> None:
    doc.setdefault("schema", "vitalgate.readings/1")
    result = decode_readings(json.dumps(doc).encode())
    assert isinstance(result, WireReadings | WireError)


@given(path=st.sampled_from(["device", "readings"]), value=json_values)
def test_mutated_good_payload_never_raises(path: str, value: Any) -> None:
    doc = good()
    doc[path] = value
    assert isinstance(decode_readings(json.dumps(doc).encode()), WireReadings | WireError)


def test_status_and_devices() -> None:
    ok = decode_status(b'{"schema":"vitalgate.status/1","hub_id":"h1","state":"offline"}',
                       expected_hub="h1")
    assert not isinstance(ok, WireError) and ok.state == "offline"
    bad = decode_status(b'{"schema":"vitalgate.status/1","hub_id":"h1","state":"asleep"}')
    assert isinstance(bad, WireError) and bad.field == "state"
    dev = decode_devices(json.dumps({"schema": "vitalgate.devices/1", "hub_id": "h1",
                                     "at": "2026-03-01T00:00:00Z",
                                     "devices": [good()["device"]]}).encode())
    assert not isinstance(dev, WireError) and dev.devices[0].battery == 81


def test_topics() -> None:
    assert readings_topic("hub-1") == "vitalgate/v1/hubs/hub-1/readings"
    assert Topic.parse("vitalgate/v1/hubs/hub-1/status") == Topic("hub-1", "status")
    assert subscription("readings", "vg") == "$share/vg/vitalgate/v1/hubs/+/readings"
    for bad in ["vitalgate/v1/hubs/+/readings", "vitalgate/v1/hubs/h/other", "a/b",
                "vitalgate/v1/hubs/#/readings"]:
        with pytest.raises(TopicError):
            Topic.parse(bad)


def test_failed_measurement_survives_encode() -> None:
    doc = good()
    doc["readings"][0]["values"] = [{"metric": "systolic", "value": None, "unit": "mmHg",
                                     "special": "nan"}]
    doc["readings"][0]["flags"] = ["measurement_unsuccessful"]
    batch = decode_readings(json.dumps(doc).encode())
    assert isinstance(batch, WireReadings)
    again = decode_readings(encode(batch))
    assert again == batch and again.readings[0].values[0].value is None
