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

-- safe_text(s): pipeline.SafeText in SQL, for output files DuckDB writes itself (COPY): a text
-- cell starting with =, +, -, @, tab or carriage return gets a leading apostrophe unless it is a
-- plain number (sign, digits, optional decimals). NULL stays NULL. Tested against SafeText on a
-- shared table of cases (pipeline/csvcopy_test.go). ascii() is the first character's code point;
-- the comparisons are spelled out because DuckDB plans an IN list as a join, which loses the row
-- order of an ordered COPY.
CREATE OR REPLACE MACRO safe_text(s) AS
    CASE WHEN (ascii(s) = 61 OR ascii(s) = 43 OR ascii(s) = 45 OR ascii(s) = 64 OR ascii(s) = 9 OR ascii(s) = 13)
              AND NOT regexp_full_match(s, '[+-]?[0-9]+(\.[0-9]+)?')
         THEN '''' || s ELSE s END;

-- csv_field(s): one CSV field exactly as Go's encoding/csv writes it: quoted (with " doubled)
-- when it contains a comma, a quote, CR or LF, is \. or starts with a Unicode space
-- (unicode.IsSpace: the regular expression, tried only when the first character is below '!' or
-- not ASCII); otherwise as it is. NULL is the empty field.
CREATE OR REPLACE MACRO csv_field(s) AS
    CASE WHEN s IS NULL THEN ''
         WHEN s = '\.' OR contains(s, ',') OR contains(s, '"') OR contains(s, chr(10)) OR contains(s, chr(13))
              OR ((ascii(s) < 33 OR ascii(s) > 127)
                  AND regexp_matches(s, '^[\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]'))
         THEN '"' || replace(s, '"', '""') || '"'
         ELSE s END;

-- csv_text(s): csv_field(safe_text(s)), with a fast path for the common cells that neither
-- changes (a letter or digit first and no comma, quote or line break; or + and digits, as E.164
-- numbers): one regular expression instead of the dozens of tests the two macros expand to
-- (10 M usage_detail rows: about 6 s less).
CREATE OR REPLACE MACRO csv_text(s) AS
    CASE WHEN regexp_full_match(s, '[0-9A-Za-z][^,"\r\n]*|\+[0-9]+') THEN s
         ELSE csv_field(safe_text(s)) END;

-- variance_percent(posted, rated): (posted − rated) / rated × 100, rounded half-up to 2 decimals
-- in integer arithmetic (DECIMAL(38, 2)); NULL when rated is 0. Amounts have 2 decimals.
CREATE OR REPLACE MACRO variance_percent(posted, rated) AS
    CASE WHEN rated <> 0 THEN CAST(
        CAST(round_ratio(CAST((posted - rated) * 100 AS HUGEINT) * 10000 * sign(CAST(rated * 100 AS HUGEINT)),
                         abs(CAST(rated * 100 AS HUGEINT)), 'half_up') AS DECIMAL(38, 0))
        * CAST(0.01 AS DECIMAL(3, 2)) AS DECIMAL(38, 2)) END;

-- variance_status(has_posted, has_rated, rated, variance, percent): the reconciliation status of a
-- row; exactly at the threshold (getvariable('variance_threshold_percent')) is ok, and a variance
-- on a rated 0 is flagged.
CREATE OR REPLACE MACRO variance_status(has_posted, has_rated, rated, variance, percent) AS
    CASE
        WHEN NOT has_posted THEN 'missing_posted'
        WHEN NOT has_rated THEN 'unexpected_posted'
        WHEN rated = 0 AND variance <> 0 THEN 'flagged'
        WHEN abs(percent) > getvariable('variance_threshold_percent') THEN 'flagged'
        ELSE 'ok'
    END;
