-- macros: exact integer arithmetic shared by every model.
-- reads: nothing. writes: macros only.
-- Amounts are exact rationals n/d of HUGEINTs until they are rounded once; these macros round them
-- without ever going through DOUBLE.

-- round_ratio(n, d, method): n/d rounded to an integer by method up | half_up | half_even | down,
-- symmetric around zero (a negative amount rounds like its absolute value). d > 0.
CREATE OR REPLACE MACRO round_ratio(n, d, method) AS
    sign(n) * (
        abs(n) // d
        + CASE method
            WHEN 'down' THEN 0
            WHEN 'up' THEN CASE WHEN abs(n) % d > 0 THEN 1 ELSE 0 END
            WHEN 'half_up' THEN CASE WHEN 2 * (abs(n) % d) >= d THEN 1 ELSE 0 END
            WHEN 'half_even' THEN CASE
                WHEN 2 * (abs(n) % d) > d THEN 1
                WHEN 2 * (abs(n) % d) = d AND (abs(n) // d) % 2 = 1 THEN 1
                ELSE 0 END
          END);

-- pow10(k): 10^k as HUGEINT for k in 0..18.
CREATE OR REPLACE MACRO pow10(k) AS
    CAST([1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
          10000000000, 100000000000, 1000000000000, 10000000000000, 100000000000000,
          1000000000000000, 10000000000000000, 100000000000000000,
          1000000000000000000][k + 1] AS HUGEINT);

-- units_to_decimal6(u, k): u units of 10^-k (k in 0..6) as an exact DECIMAL(18,6).
CREATE OR REPLACE MACRO units_to_decimal6(u, k) AS
    CAST(CAST(u * pow10(6 - k) AS DECIMAL(18, 0)) * CAST(0.000001 AS DECIMAL(7, 6)) AS DECIMAL(18, 6));

-- half_up_2(x): a DECIMAL rounded half away from zero to 2 decimals. DuckDB rounds DECIMAL in
-- integer arithmetic (tested in pipeline/macros_test.go), so this is exact.
CREATE OR REPLACE MACRO half_up_2(x) AS CAST(round(x, 2) AS DECIMAL(18, 2));
