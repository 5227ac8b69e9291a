-- rating_calls: each staged CDR with its plan and the time bands in force at its local start.
-- reads: staged_cdrs, ref_customers, ref_plans, ref_time_bands; variable billing_tz.
-- writes (temporary, dropped by the rate stage when it is done):
--   rating_minutes    one row per distinct UTC minute of the calls' starts: the billing zone's local
--                     ISO weekday and minute of day then (the ICU conversion, the costly part, runs
--                     once per minute, a few ten thousand a month, instead of once per call).
--   rating_slots      one row per (local ISO weekday, local minute of day) in rating_minutes:
--                     band_key = the named bands in force then, sorted, comma separated ('' = none).
--   rating_band_sets  one row per (band_key, band): each band of the set, plus '' (a rate whose
--                     time_band is empty applies in every slot).
--   rating_calls      one row per staged CDR (cdr_id), only the columns rating needs (the wide
--                     columns are joined back once, in rating_rated_usage.sql).
--                     plan = the customer's rate_plan in effect on the CDR's usage_date (so a plan
--                     change in the middle of the month is honoured call by call); NULL and
--                     mapped = false when no customers.csv row for the account is in effect that day;
--                     plan_known = the plan is in plans.csv; band_key = the bands in force at the
--                     start in the billing zone; quantity = duration (voice) or bytes (data);
--                     dest_key = destination without a leading '+'.

CREATE OR REPLACE TEMP TABLE rating_minutes AS
SELECT utc_minute,
       CAST(isodow(l) AS INTEGER) AS local_isodow,
       CAST(hour(l) * 60 + minute(l) AS INTEGER) AS local_minute
FROM (SELECT utc_minute, timezone(getvariable('billing_tz'), utc_minute::TIMESTAMPTZ) AS l
      FROM (SELECT DISTINCT date_trunc('minute', start_utc) AS utc_minute FROM staged_cdrs));

CREATE OR REPLACE TEMP TABLE rating_slots AS
WITH slots AS (SELECT DISTINCT local_isodow, local_minute FROM rating_minutes)
SELECT s.local_isodow, s.local_minute,
       coalesce(string_agg(DISTINCT b.band, ',' ORDER BY b.band), '') AS band_key
FROM slots s
LEFT JOIN ref_time_bands b
       ON b.isodow = s.local_isodow
      AND b.start_minute <= s.local_minute
      AND s.local_minute < b.end_minute
GROUP BY s.local_isodow, s.local_minute;

CREATE OR REPLACE TEMP TABLE rating_band_sets AS
SELECT DISTINCT band_key, unnest(string_split(band_key, ',')) AS band FROM rating_slots WHERE band_key <> ''
UNION
SELECT DISTINCT band_key, '' AS band FROM rating_slots
UNION
SELECT '' AS band_key, '' AS band;

CREATE OR REPLACE TEMP TABLE rating_calls AS
SELECT s.cdr_id, s.account, s.usage_date, s.usage_type, s.direction, c.rate_plan AS plan,
       c.rate_plan IS NOT NULL AS mapped, p.plan IS NOT NULL AS plan_known,
       coalesce(sl.band_key, '') AS band_key,
       CAST(CASE WHEN s.usage_type = 'data' THEN s.bytes ELSE s.duration END AS BIGINT) AS quantity,
       ltrim(coalesce(s.destination, ''), '+') AS dest_key
FROM staged_cdrs s
LEFT JOIN rating_minutes m ON m.utc_minute = date_trunc('minute', s.start_utc)
LEFT JOIN rating_slots sl ON sl.local_isodow = m.local_isodow AND sl.local_minute = m.local_minute
-- (coalesce, not `effective_to IS NULL OR …`: the OR made DuckDB plan a nested loop, 8 s of 9 at
-- 200k calls)
LEFT JOIN ref_customers c
       ON c.account = s.account
      AND c.effective_from <= s.usage_date
      AND s.usage_date <= coalesce(c.effective_to, DATE '9999-12-31')
LEFT JOIN ref_plans p ON p.plan = c.rate_plan;
