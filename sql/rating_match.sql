-- rating_match: the rate of each call, by longest prefix.
-- reads: rating_calls, rating_band_sets (rating_calls.sql), ref_rates.
-- writes (temporary):
--   rating_heads        one row per rate (rate_id): its tier_start-0 row (plan, product, usage_type,
--                       direction, prefix, time_band, connect/min/max, effective dates);
--                       pkey = prefix without a leading '+'.
--   rating_keys         one row per distinct match key (key_id; plan, usage_type, direction, dest_key,
--                       usage_date, band_key) of the mapped calls whose plan exists.
--   rating_prefix_hits  one row per (plan, usage_type, dest_key, pkey): every prefix of the plan's
--                       deck that the destination starts with ('' always does). Each distinct
--                       destination is cut at each prefix length present in the deck and hash-joined
--                       to the deck's prefixes: no LIKE join, no cross join.
--   rating_match        one row per match key that has a rate: the chosen rate_id.
--   rating_call_rates   one row per mapped call: cdr_id, plan_known, quantity, band_key and rate_id
--                       (NULL = unrated).
-- Choice among the rates in effect on the call's usage_date, for its plan and usage type, whose
-- direction is the call's or 'any' and whose time_band is '' or a band in force at its local start:
--   1. the longest prefix; 2. the call's own direction before 'any'; 3. a named time band before '';
--   4. the lowest rate_id (the loader numbers rates in rates.csv order; only two named bands in force
--      at once, or rows the loader rejects as overlapping, get this far).

CREATE OR REPLACE TEMP TABLE rating_heads AS
SELECT rate_id, plan, product, usage_type, direction, prefix, ltrim(prefix, '+') AS pkey, time_band,
       connect_fee, min_charge, max_charge, effective_from, effective_to, file, line
FROM ref_rates
WHERE tier_start = 0; -- the loader refuses a rate whose tiers do not start at 0

CREATE OR REPLACE TEMP TABLE rating_keys AS
SELECT row_number() OVER () AS key_id, *
FROM (SELECT DISTINCT plan, usage_type, direction, dest_key, usage_date, band_key
      FROM rating_calls
      WHERE mapped AND plan_known);

CREATE OR REPLACE TEMP TABLE rating_prefix_hits AS
WITH dests AS (SELECT DISTINCT plan, usage_type, dest_key FROM rating_keys),
     lens AS (SELECT DISTINCT plan, usage_type, length(pkey) AS len FROM rating_heads),
     prefixes AS (SELECT DISTINCT plan, usage_type, pkey FROM rating_heads),
     cuts AS (
        SELECT d.plan, d.usage_type, d.dest_key, l.len, left(d.dest_key, l.len) AS pkey
        FROM dests d
        JOIN lens l ON l.plan = d.plan AND l.usage_type = d.usage_type
        WHERE l.len <= length(d.dest_key))
SELECT c.plan, c.usage_type, c.dest_key, c.pkey, c.len
FROM cuts c
JOIN prefixes p ON p.plan = c.plan AND p.usage_type = c.usage_type AND p.pkey = c.pkey;

-- The choice is one hash aggregate: pick = the rank (prefix length, own direction, named band)
-- shifted left 32 bits, plus 2^31 - 1 - rate_id, so that max(pick) is the best rate and, among
-- equals, the lowest rate_id.
CREATE OR REPLACE TEMP TABLE rating_match AS
WITH best AS (
SELECT k.key_id,
       CAST(2147483647 - max(
           (CAST(x.len AS BIGINT) * 4
            + CASE WHEN h.direction = k.direction THEN 2 ELSE 0 END
            + CASE WHEN h.time_band <> '' THEN 1 ELSE 0 END) * 4294967296
           + (2147483647 - h.rate_id)) % 4294967296 AS INTEGER) AS rate_id
FROM rating_keys k
JOIN rating_prefix_hits x
  ON x.plan = k.plan AND x.usage_type = k.usage_type AND x.dest_key = k.dest_key
JOIN rating_band_sets b ON b.band_key = k.band_key
JOIN rating_heads h
  ON h.plan = k.plan AND h.usage_type = k.usage_type AND h.pkey = x.pkey AND h.time_band = b.band
WHERE h.direction IN (k.direction, 'any')
  AND h.effective_from <= k.usage_date
  AND (h.effective_to IS NULL OR k.usage_date <= h.effective_to)
GROUP BY k.key_id)
SELECT k.plan, k.usage_type, k.direction, k.dest_key, k.usage_date, k.band_key, best.rate_id
FROM rating_keys k JOIN best USING (key_id);

CREATE OR REPLACE TEMP TABLE rating_call_rates AS
SELECT c.cdr_id, c.plan_known, c.quantity, c.band_key, m.rate_id
FROM rating_calls c
LEFT JOIN rating_match m
  ON m.plan = c.plan AND m.usage_type = c.usage_type AND m.direction = c.direction
 AND m.dest_key = c.dest_key AND m.usage_date = c.usage_date AND m.band_key = c.band_key
WHERE c.mapped;
