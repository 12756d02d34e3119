-- Device days per patient and local calendar month as a bit mask (bit d-1 = day d),
-- kept in the same transaction as reading_days: month-end billing reads one small
-- row per patient-month instead of one row per patient-day-metric.
CREATE TABLE device_day_months (
    practice_id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    month DATE NOT NULL,
    days INTEGER NOT NULL,
    PRIMARY KEY (patient_id, month)
);
CREATE INDEX device_day_months_practice ON device_day_months (practice_id, month);
INSERT INTO device_day_months (practice_id, patient_id, month, days)
SELECT min(practice_id), patient_id, date_trunc('month', day)::date,
       bit_or(1 << (extract(day FROM day)::int - 1))
FROM reading_days WHERE device_count > 0
GROUP BY patient_id, date_trunc('month', day)::date;
