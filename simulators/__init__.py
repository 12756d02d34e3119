"""Vitalgate simulators: patients, BLE devices, hubs, fleets, scenarios and the demo.

* :mod:`simulators.physiology` -- seeded patient models (conditions, courses, adherence);
* :mod:`simulators.devices` -- scale, BP cuff, oximeter, glucometer speaking GATT bytes;
* :mod:`simulators.gattlink` -- the edge agent's ``GattLink`` over a simulated device;
* :mod:`simulators.panel` -- a simulated practice and :func:`~simulators.panel.provision`;
* :mod:`simulators.fleet` -- MQTT publishing: fast path, full edge path, load;
* :mod:`simulators.scenario` -- scenario files with expected escalations and billing;
* :mod:`simulators.demo` -- the demo practice; :mod:`simulators.cli` -- the commands.

See ``docs/simulators.md``.
"""
