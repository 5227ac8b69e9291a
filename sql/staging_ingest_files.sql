-- staging_ingest_files.sql: the files the ingest stage looked at in this run.
-- Reads:  nothing (pipeline.IngestStage inserts the rows).
-- Writes: table ingest_files (grain: input file ingested or found unreadable in this run; files
--         already in the ledger are not listed). status is 'ingested' or 'unreadable'; detail
--         says why a file could not be read. rows_read = rows_staged + rows_rejected +
--         rows_duplicate + rows_not_billed on every 'ingested' row.
CREATE TABLE IF NOT EXISTS ingest_files (
    sha256          VARCHAR,
    source          VARCHAR,
    source_file     VARCHAR,
    status          VARCHAR,
    rows_read       BIGINT,
    rows_staged     BIGINT,
    rows_rejected   BIGINT,
    rows_duplicate  BIGINT,
    rows_not_billed BIGINT,
    detail          VARCHAR
);
