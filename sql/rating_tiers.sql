-- rating_tiers: the exact amount of each distinct (rate, quantity), tier by tier.
-- reads: rating_call_rates, rating_match (rating_match.sql), rating_heads, ref_rates, ref_plans.
-- writes (temporary):
--   rating_quantities  one row per distinct (rate_id, quantity) of the rated calls.
--   rating_tiers       one row per tier of a rate in use: tier_no (1, 2, … in tier_start order),
--                      rate_n = rate in units of 1e-9 (exact HUGEINT).
--   rating_tier_steps  one row per (rate_id, quantity, tier_no) for each tier whose start is below
--                      the quantity, plus a tier_no 0 row (nothing billed yet) for every pair: from_q/to_q = the part of the call inside the tier (from
--                      max(t, tier_start) to min(quantity, tier_end)), billed = that part rounded up
--                      to whole increments (0 when from_q >= to_q), t_after = where the next tier
--                      starts counting (t moves to the end of what was billed), tier amount exactly
--                      billed * rate / rate_unit = tier_num / tier_den, and the running sum of the
--                      tiers as cum_num / cum_den in units of 1e-9 (cum_den = lcm of the rate units),
--                      cum_billed = the quantity billed so far; is_last marks the pair's last step
--                      (the next tier starts at or after the quantity, or there is none).
--   rating_amounts     one row per (rate_id, quantity): billed_quantity; the exact amount
--                      exact_num / exact_den after connect fee, minimum and maximum; charge_limit =
--                      'min' | 'max' | '' (which one applied); units = the amount rounded ONCE with
--                      the plan's method to its decimals, in units of 10^-amount_decimals.
--                      (exact_num / exact_den is not reduced; trace reduces it.)
-- Quantity 0 is not charged: billed 0, amount 0 (no connect fee, no minimum).
-- Only integer HUGEINT arithmetic: no DOUBLE ever touches an amount.

CREATE OR REPLACE MACRO rating_nanos(x) AS CAST(CAST(x AS DECIMAL(38, 9)) * 1000000000 AS HUGEINT);
-- rating_billed(f, t, inc): the part [f, t) rounded up to whole increments (0 when empty).
CREATE OR REPLACE MACRO rating_billed(f, t, inc) AS
    CASE WHEN t > f THEN ((t - f + inc - 1) // inc) * inc ELSE 0 END;

CREATE OR REPLACE TEMP TABLE rating_quantities AS
SELECT DISTINCT rate_id, quantity FROM rating_call_rates WHERE rate_id IS NOT NULL;

CREATE OR REPLACE TEMP TABLE rating_tiers AS
SELECT r.rate_id, CAST(row_number() OVER (PARTITION BY r.rate_id ORDER BY r.tier_start) AS INTEGER) AS tier_no,
       r.tier_start, r.tier_end, r.rate, rating_nanos(r.rate) AS rate_n, r.rate_unit, r.increment,
       r.file, r.line
FROM ref_rates r
WHERE r.rate_id IN (SELECT rate_id FROM rating_match);

CREATE OR REPLACE TEMP TABLE rating_tier_steps AS
WITH RECURSIVE q AS (
    SELECT n.rate_id, n.quantity, t.tier_start AS first_start
    FROM rating_quantities n
    JOIN rating_tiers t ON t.rate_id = n.rate_id AND t.tier_no = 1
),
steps(rate_id, quantity, tier_no, from_q, to_q, billed, t_after, tier_num, tier_den, cum_num, cum_den,
      cum_billed, is_last) AS (
    SELECT rate_id, quantity, 0, CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT),
           CAST(0 AS BIGINT), CAST(0 AS HUGEINT), CAST(1 AS HUGEINT), CAST(0 AS HUGEINT), CAST(1 AS HUGEINT),
           CAST(0 AS BIGINT), first_start >= quantity
    FROM q
    UNION ALL
    SELECT s.rate_id, s.quantity, r.tier_no, x.from_q, x.to_q, x.billed,
           CASE WHEN x.billed > 0 THEN x.from_q + x.billed ELSE s.t_after END,
           x.billed * r.rate_n, CAST(r.rate_unit AS HUGEINT) * 1000000000,
           s.cum_num * (x.den // s.cum_den) + x.billed * r.rate_n * (x.den // r.rate_unit),
           x.den,
           s.cum_billed + x.billed,
           r.tier_end IS NULL OR r.tier_end >= s.quantity
    FROM steps s
    JOIN rating_tiers r ON r.rate_id = s.rate_id AND r.tier_no = s.tier_no + 1
    CROSS JOIN LATERAL (
        SELECT greatest(s.t_after, r.tier_start) AS from_q,
               least(s.quantity, coalesce(r.tier_end, s.quantity)) AS to_q,
               rating_billed(greatest(s.t_after, r.tier_start),
                             least(s.quantity, coalesce(r.tier_end, s.quantity)), r.increment) AS billed,
               lcm(s.cum_den, CAST(r.rate_unit AS HUGEINT)) AS den
    ) x
    WHERE r.tier_start < s.quantity
)
SELECT * FROM steps;

CREATE OR REPLACE TEMP TABLE rating_amounts AS
WITH base AS (
    SELECT l.rate_id, l.quantity, h.plan, p.rounding_method, p.rounding_decimals,
           l.cum_billed AS billed_quantity,
           l.cum_den AS den,
           CASE WHEN l.quantity > 0
                THEN l.cum_num + h.connect_n * l.cum_den
                ELSE 0 END AS with_fee,
           h.min_n * l.cum_den AS min_n,
           h.max_n * l.cum_den AS max_n
    FROM rating_tier_steps l
    JOIN (SELECT rate_id, plan, rating_nanos(connect_fee) AS connect_n, rating_nanos(min_charge) AS min_n,
                 rating_nanos(max_charge) AS max_n
          FROM rating_heads
          WHERE rate_id IN (SELECT rate_id FROM rating_tiers)) h ON h.rate_id = l.rate_id
    JOIN ref_plans p ON p.plan = h.plan
    WHERE l.is_last
),
raised AS (
    SELECT *,
           CASE WHEN quantity > 0 AND min_n IS NOT NULL AND with_fee < min_n THEN min_n ELSE with_fee END AS r
    FROM base
),
exact AS (
    SELECT *,
           CASE WHEN quantity > 0 AND max_n IS NOT NULL AND r > max_n THEN max_n ELSE r END AS n,
           den * 1000000000 AS d
    FROM raised
)
SELECT rate_id, quantity, plan, rounding_method, rounding_decimals AS amount_decimals, billed_quantity,
       CASE WHEN n <> r THEN 'max' WHEN r <> with_fee THEN 'min' ELSE '' END AS charge_limit,
       n AS exact_num, d AS exact_den,
       round_ratio(n, den * pow10(9 - rounding_decimals), rounding_method) AS units
FROM exact;
