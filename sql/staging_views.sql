-- staging_views.sql: the run's window on the staging folder.
-- Reads:  staging Parquet files (cdrs/usage_date=*/<sha256>.parquet and rejects/<sha256>.parquet),
--         the list chosen by pipeline.OpenStaging (files of the ledger only, the period's usage
--         dates for CDRs, the period's files for rejects; a zero-row schema file, last for CDRs: DuckDB
--         estimates a list's rows from its first file);
--         table ingest_files (this run's unreadable files).
-- Writes: view staged_cdrs (grain: unique staged CDR, cdr_id, usage_date in the period);
--         view ingest_rejects (grain: rejected input row, or unreadable file with source_line 0).
-- staged_cdrs_from(files): the staged CDR columns of TABLES.md from a list of staged Parquet files
-- (also used by pipeline.LateUsageStage for late usage of closed periods).
CREATE OR REPLACE MACRO staged_cdrs_from(files) AS TABLE
SELECT
    cdr_id,
    source,
    account,
    direction,
    origin,
    destination,
    origin_raw,
    destination_raw,
    start_utc::TIMESTAMP AS start_utc,
    usage_date::DATE AS usage_date,
    usage_type,
    duration::BIGINT AS duration,
    bytes::BIGINT AS bytes,
    source_file,
    source_line::BIGINT AS source_line,
    file_sha256
FROM read_parquet(files, hive_partitioning = false);

CREATE OR REPLACE VIEW staged_cdrs AS
SELECT * FROM staged_cdrs_from('{{staged_cdr_files}}')
WHERE usage_date BETWEEN getvariable('period_from') AND getvariable('period_to');

CREATE OR REPLACE VIEW ingest_rejects AS
SELECT source, source_file, source_line::BIGINT AS source_line, column_name, reason, raw
FROM read_parquet('{{reject_files}}', hive_partitioning = false)
UNION ALL
SELECT source, source_file, 0::BIGINT, '', 'unreadable file: ' || detail, ''
FROM ingest_files
WHERE status = 'unreadable';
