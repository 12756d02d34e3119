-- Device days per patient and local calendar month as a bit mask (bit d-1 = day d),
-- kept in the same transaction as reading_days: month-end billing reads one small
-- row per patient-month instead of one row per patient-day-metric.
CREATE TABLE device_day_months (
    practice_id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    month TEXT NOT NULL,
    days INTEGER NOT NULL,
    PRIMARY KEY (patient_id, month)
);
CREATE INDEX device_day_months_practice ON device_day_months (practice_id, month);
-- each day sets its own bit, so the sum of the distinct bits of a month is their OR
INSERT INTO device_day_months (practice_id, patient_id, month, days)
SELECT min(practice_id), patient_id, substr(day, 1, 8) || '01',
       SUM(DISTINCT 1 << (CAST(substr(day, 9, 2) AS INTEGER) - 1))
FROM reading_days WHERE device_count > 0
GROUP BY patient_id, substr(day, 1, 8);
