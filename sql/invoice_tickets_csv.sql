-- invoice_tickets_csv: the rows of errors/tickets.csv, one ConnectWise service ticket per subject
-- whose billing cannot go out clean. Columns are ConnectWise ticket field paths where one exists
-- (summary ≤ 100 characters, company/id, company/identifier, board/name, priority/name,
-- initialDescription), then account, kinds, count, source_file (the first raw CDR file) and
-- source_lines (the raw CDR files and line numbers behind the ticket, at most 50 lines listed).
-- reads: export_error_rows, invoice_held, getvariable('period', 'hold_on_errors', 'ticket_board',
--   'ticket_priority'). writes: nothing (a query).
-- grain: subject = a customer (company) when the problem belongs to one; else the CDR account
-- (unmapped accounts); else the input file (rejected rows name no account).
WITH subj AS (
    SELECT CASE WHEN company_id IS NOT NULL THEN 1 WHEN account <> '' THEN 2 ELSE 3 END AS subject_type,
           CASE WHEN company_id IS NOT NULL THEN CAST(company_id AS VARCHAR)
                WHEN account <> '' THEN account ELSE source_file END AS subject,
           *
    FROM export_error_rows
),
kinds AS (
    SELECT subject_type, subject, kind, count(*) AS n, min(detail) AS detail
    FROM subj GROUP BY subject_type, subject, kind
),
numbered AS (
    SELECT subject_type, subject, source_file, source_line,
           row_number() OVER (PARTITION BY subject_type, subject ORDER BY source_file, source_line) AS rn
    FROM (SELECT DISTINCT subject_type, subject, source_file, source_line FROM subj)
),
per_file AS (
    SELECT subject_type, subject, source_file,
           source_file || ':' || string_agg(CAST(source_line AS VARCHAR), ',' ORDER BY source_line) AS lines
    FROM numbered WHERE rn <= 50
    GROUP BY subject_type, subject, source_file
),
file_lists AS (
    SELECT p.subject_type, p.subject, min(p.source_file) AS first_file,
           string_agg(p.lines, '; ' ORDER BY p.source_file)
           || CASE WHEN max(t.total) > 50 THEN ' (+' || (max(t.total) - 50) || ' more)' ELSE '' END AS source_lines
    FROM per_file p
    JOIN (SELECT subject_type, subject, count(*) AS total FROM numbered GROUP BY ALL) t
      USING (subject_type, subject)
    GROUP BY p.subject_type, p.subject
),
tickets AS (
    SELECT k.subject_type, k.subject,
           min(s.company_id) AS company_id, min(s.company_identifier) AS company_identifier,
           CASE WHEN k.subject_type = 2 THEN k.subject ELSE min(s.account) FILTER (WHERE s.account <> '') END AS account,
           string_agg(k.kind || '=' || k.n, ';' ORDER BY k.kind) AS kinds,
           string_agg(k.kind || ': ' || k.n || ' (' || k.detail || ')', chr(10) ORDER BY k.kind) AS kind_lines,
           sum(k.n)::BIGINT AS count
    FROM kinds k
    JOIN (SELECT DISTINCT subject_type, subject, company_id, company_identifier, account FROM subj) s
      USING (subject_type, subject)
    GROUP BY k.subject_type, k.subject
)
SELECT left(CASE t.subject_type
                WHEN 1 THEN CASE WHEN h.company_id IS NOT NULL AND getvariable('hold_on_errors')
                                 THEN 'Invoice held: ' ELSE 'Billing review: ' END
                            || t.company_identifier
                WHEN 2 THEN 'Unbilled CDRs: account ' || t.subject
                ELSE 'Rejected CDR rows: ' || t.subject
            END || ' ' || getvariable('period') || ' (' || t.kinds || ')', 100) AS summary,
       t.company_id AS "company/id", t.company_identifier AS "company/identifier",
       getvariable('ticket_board') AS "board/name", getvariable('ticket_priority') AS "priority/name",
       t.kind_lines || chr(10) || 'Raw CDR lines: ' || f.source_lines AS "initialDescription",
       coalesce(t.account, '') AS account, t.kinds, t.count, f.first_file AS source_file,
       f.source_lines
FROM tickets t
JOIN file_lists f USING (subject_type, subject)
LEFT JOIN invoice_held h ON h.company_id = t.company_id AND t.subject_type = 1
ORDER BY t.subject_type, t.company_identifier NULLS LAST, t.subject
