-- rating_match: the rate of each call, by longest prefix.
-- reads: rating_calls, rating_heads, rating_band_sets (rating_calls.sql).
-- writes (temporary):
--   rating_prefix_hits  one row per (plan, usage_type, cut, pkey): every prefix of the plan's deck
--                       that a destination cut starts with ('' always does). Each distinct cut is
--                       cut again at each prefix length present in the deck and hash-joined to the
--                       deck's prefixes: no LIKE join, no cross join.
--   rating_cut_prefix   one row per (plan, usage_type, cut) with a hit: prefix_key = its longest
--                       hit. The deck prefixes a destination starts with are exactly prefix_key and
--                       the deck prefixes of prefix_key, so calls are matched per prefix_key, not
--                       per destination (a few ten thousand keys instead of one per call).
--   rating_keys         one row per distinct match key (key_id; plan, usage_type, direction,
--                       prefix_key, epoch, band_key) of the mapped calls whose plan exists.
--   rating_match        one row per match key that has a rate: the chosen rate_id.
--   rating_call_rates   VIEW, one row per staged CDR: rating_calls plus rate_id (NULL = unmapped
--                       or unrated).
-- Choice among the rates in effect on the call's usage_date (its epoch), for its plan and usage
-- type, whose direction is the call's or 'any' and whose time_band is '' or a band in force at its
-- local start:
--   1. the longest prefix; 2. the call's own direction before 'any'; 3. a named time band before '';
--   4. the lowest rate_id (the loader numbers rates in rates.csv order; only two named bands in force
--      at once, or rows the loader rejects as overlapping, get this far).

CREATE OR REPLACE TEMP TABLE rating_prefix_hits AS
WITH cuts AS (SELECT DISTINCT plan, usage_type, cut FROM rating_calls WHERE mapped AND plan_known),
     lens AS (SELECT DISTINCT plan, usage_type, length(pkey) AS len FROM rating_heads),
     prefixes AS (SELECT DISTINCT plan, usage_type, pkey FROM rating_heads),
     candidates AS (
        SELECT c.plan, c.usage_type, c.cut, l.len, left(c.cut, l.len) AS pkey
        FROM cuts c
        JOIN lens l ON l.plan = c.plan AND l.usage_type = c.usage_type
        WHERE l.len <= length(c.cut))
SELECT c.plan, c.usage_type, c.cut, c.pkey, c.len
FROM candidates c
JOIN prefixes p ON p.plan = c.plan AND p.usage_type = c.usage_type AND p.pkey = c.pkey;

CREATE OR REPLACE TEMP TABLE rating_cut_prefix AS
SELECT plan, usage_type, cut, arg_max(pkey, len) AS prefix_key
FROM rating_prefix_hits
GROUP BY plan, usage_type, cut;

CREATE OR REPLACE TEMP TABLE rating_keys AS
SELECT row_number() OVER () AS key_id, *
FROM (SELECT DISTINCT c.plan, c.usage_type, c.direction, x.prefix_key, c.epoch, c.band_key
      FROM rating_calls c
      JOIN rating_cut_prefix x ON x.plan = c.plan AND x.usage_type = c.usage_type AND x.cut = c.cut
      WHERE c.mapped AND c.plan_known);

-- The choice is one hash aggregate: pick = the rank (prefix length, own direction, named band)
-- shifted left 32 bits, plus 2^31 - 1 - rate_id, so that max(pick) is the best rate and, among
-- equals, the lowest rate_id.
CREATE OR REPLACE TEMP TABLE rating_match AS
WITH key_hits AS (
    SELECT DISTINCT x.plan, x.usage_type, p.prefix_key, x.pkey, x.len
    FROM rating_prefix_hits x
    JOIN rating_cut_prefix p ON p.plan = x.plan AND p.usage_type = x.usage_type AND p.cut = x.cut
), best AS (
SELECT k.key_id,
       CAST(2147483647 - max(
           (CAST(x.len AS BIGINT) * 4
            + CASE WHEN h.direction = k.direction THEN 2 ELSE 0 END
            + CASE WHEN h.time_band <> '' THEN 1 ELSE 0 END) * 4294967296
           + (2147483647 - h.rate_id)) % 4294967296 AS INTEGER) AS rate_id
FROM rating_keys k
JOIN key_hits x
  ON x.plan = k.plan AND x.usage_type = k.usage_type AND x.prefix_key = k.prefix_key
JOIN rating_band_sets b ON b.band_key = k.band_key
JOIN rating_heads h
  ON h.plan = k.plan AND h.usage_type = k.usage_type AND h.pkey = x.pkey AND h.time_band = b.band
WHERE h.direction IN (k.direction, 'any')
  AND h.effective_from <= k.epoch
  AND (h.effective_to IS NULL OR k.epoch <= h.effective_to)
GROUP BY k.key_id)
SELECT k.plan, k.usage_type, k.direction, k.prefix_key, k.epoch, k.band_key, best.rate_id
FROM rating_keys k JOIN best USING (key_id);

CREATE OR REPLACE TEMP VIEW rating_call_rates AS
SELECT c.*, m.rate_id
FROM rating_calls c
LEFT JOIN rating_cut_prefix x ON x.plan = c.plan AND x.usage_type = c.usage_type AND x.cut = c.cut
LEFT JOIN rating_match m
  ON m.plan = c.plan AND m.usage_type = c.usage_type AND m.direction = c.direction
 AND m.prefix_key = x.prefix_key AND m.epoch = c.epoch AND m.band_key = c.band_key;
