-- rating_calls: each staged CDR with its customer, plan, time bands and destination cut.
-- reads: staged_cdrs, ref_customers, ref_plans, ref_time_bands, ref_rates; variable billing_tz.
-- writes (temporary, dropped by the rate stage when it is done):
--   rating_minutes    one row per distinct UTC minute of the calls' starts: the billing zone's local
--                     ISO weekday and minute of day then (the ICU conversion, the costly part, runs
--                     once per minute, a few ten thousand a month, instead of once per call).
--   rating_slots      one row per (local ISO weekday, local minute of day) in rating_minutes:
--                     band_key = the named bands in force then, sorted, comma separated ('' = none).
--   rating_band_sets  one row per (band_key, band): each band of the set, plus '' (a rate whose
--                     time_band is empty applies in every slot).
--   rating_heads      one row per rate (rate_id): its tier_start-0 row (plan, product, usage_type,
--                     direction, prefix, time_band, connect/min/max, effective dates);
--                     pkey = prefix without a leading '+'.
--   rating_days       one row per distinct usage_date of the staged calls: epoch = the latest date
--                     on or before it at which some rate starts or stops being in effect. Every
--                     rate is in effect on all days of an epoch or on none, so matching per epoch
--                     instead of per day gives the same rate with far fewer keys.
--   variable rating_depth  the length of the longest prefix in the deck (0 when it is empty).
--   rating_calls      VIEW, one row per staged CDR (cdr_id): the staged columns, the customer's
--                     columns (company_id … invoice_mode) and plan = its rate_plan, from the
--                     customers.csv row of the account in effect on the CDR's usage_date (so a plan
--                     change in the middle of the month is honoured call by call); NULL and
--                     mapped = false when there is none; plan_known = the plan is in plans.csv;
--                     band_key = the bands in force at the start in the billing zone;
--                     quantity = duration (voice) or bytes (data); dest_key = destination without
--                     a leading '+'; cut = dest_key cut to rating_depth characters (no prefix is
--                     longer, so the match depends on the cut alone); epoch (rating_days).
--                     A view, not a table: each use streams the staged Parquet files once, joined
--                     to these small tables, so memory does not grow with the number of calls.

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

CREATE OR REPLACE TEMP TABLE rating_heads AS
SELECT rate_id, plan, product, usage_type, direction, prefix, ltrim(prefix, '+') AS pkey, time_band,
       connect_fee, min_charge, max_charge, effective_from, effective_to, file, line
FROM ref_rates
WHERE tier_start = 0; -- the loader refuses a rate whose tiers do not start at 0

SET VARIABLE rating_depth = (SELECT coalesce(max(length(pkey)), 0) FROM rating_heads);

CREATE OR REPLACE TEMP TABLE rating_days AS
WITH bounds AS (
    SELECT effective_from AS d FROM rating_heads
    UNION SELECT CAST(effective_to + 1 AS DATE) FROM rating_heads WHERE effective_to IS NOT NULL)
SELECT u.usage_date, coalesce(max(b.d), DATE '0001-01-01') AS epoch
FROM (SELECT DISTINCT usage_date FROM staged_cdrs) u
LEFT JOIN bounds b ON b.d <= u.usage_date
GROUP BY u.usage_date;

CREATE OR REPLACE TEMP VIEW rating_calls AS
SELECT s.cdr_id, s.account, s.usage_date, s.start_utc, s.usage_type, s.direction, s.origin,
       s.destination, s.duration, s.source_file, s.source_line,
       c.company_id, c.company_identifier, c.company_name, c.agreement_id, c.jurisdiction,
       c.invoice_mode, c.rate_plan AS plan,
       c.rate_plan IS NOT NULL AS mapped, p.plan IS NOT NULL AS plan_known,
       coalesce(sl.band_key, '') AS band_key,
       CAST(CASE WHEN s.usage_type = 'data' THEN s.bytes ELSE s.duration END AS BIGINT) AS quantity,
       ltrim(coalesce(s.destination, ''), '+') AS dest_key,
       left(ltrim(coalesce(s.destination, ''), '+'), getvariable('rating_depth')) AS cut,
       d.epoch
FROM staged_cdrs s
JOIN rating_days d ON d.usage_date = s.usage_date
LEFT JOIN rating_minutes m ON m.utc_minute = date_trunc('minute', s.start_utc)
LEFT JOIN rating_slots sl ON sl.local_isodow = m.local_isodow AND sl.local_minute = m.local_minute
-- (coalesce, not `effective_to IS NULL OR …`: the OR made DuckDB plan a nested loop, 8 s of 9 at
-- 200k calls)
LEFT JOIN ref_customers c
       ON c.account = s.account
      AND c.effective_from <= s.usage_date
      AND s.usage_date <= coalesce(c.effective_to, DATE '9999-12-31')
LEFT JOIN ref_plans p ON p.plan = c.rate_plan;
