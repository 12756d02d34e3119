-- Months in which a patient's complex CCM care plan was established or substantially
-- revised (99487/99489 need it), as the physician recorded them.
CREATE TABLE complex_ccm_months (
    practice_id TEXT NOT NULL REFERENCES practices(id),
    patient_id TEXT NOT NULL REFERENCES patients(id),
    month TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (patient_id, month)
);
CREATE INDEX complex_ccm_months_practice ON complex_ccm_months (practice_id, month);
