"""RPM, CCM and PCM billing: which codes a month supports, and why.

Pure evaluation over explicit inputs (device days, time entries, enrolment,
``today``); no database and no clock.  See :mod:`gateway.billing.evaluate`
for how periods, month attribution and the conservative choices work, and
``docs/billing.md`` for the rules as Vitalgate applies them.
"""

from gateway.billing.evaluate import evaluate_month
from gateway.billing.model import (
    BilledCode,
    BillingError,
    BillingInputError,
    BillingProfile,
    MonthReport,
    NotBillable,
    Performer,
    RpmPeriod,
    TimeEntry,
)
from gateway.billing.periods import (
    RawReading,
    local_device_days,
    monitoring_start,
    period_bounds,
    period_index,
    rpm_periods,
)
from gateway.billing.projection import (
    AtRiskProjection,
    PeriodStatus,
    TimeProgress,
    project_at_risk,
)
from gateway.billing.rules import DEFAULT_RULES, BillingMonth, BillingRules

__all__ = [
    "DEFAULT_RULES",
    "AtRiskProjection",
    "BilledCode",
    "BillingError",
    "BillingInputError",
    "BillingMonth",
    "BillingProfile",
    "BillingRules",
    "MonthReport",
    "NotBillable",
    "Performer",
    "PeriodStatus",
    "RawReading",
    "RpmPeriod",
    "TimeEntry",
    "TimeProgress",
    "evaluate_month",
    "local_device_days",
    "monitoring_start",
    "period_bounds",
    "period_index",
    "project_at_risk",
    "rpm_periods",
]
