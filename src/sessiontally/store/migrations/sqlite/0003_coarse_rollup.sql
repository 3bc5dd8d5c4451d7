-- Coarser levels of the rollup, so that a long series reads few rows (store/rollup.py).
-- grain: quarters per row (4 = a UTC hour, 96 = a UTC day); first_quarter is a multiple
-- of grain. Same keys as session_counts otherwise; kept in the same transaction.

CREATE TABLE session_counts_coarse (
    workspace_id  INTEGER NOT NULL,
    app_key       INTEGER NOT NULL,
    segment_key   INTEGER NOT NULL,
    grain         INTEGER NOT NULL,
    first_quarter INTEGER NOT NULL,
    sessions      INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, app_key, segment_key, grain, first_quarter)
) WITHOUT ROWID;

-- Quarters are never negative (no session starts before 1970), so / truncates = floors.
INSERT INTO session_counts_coarse (workspace_id, app_key, segment_key, grain, first_quarter, sessions)
SELECT workspace_id, app_key, segment_key, grain, quarter / grain * grain, SUM(sessions)
FROM session_counts, (SELECT 4 AS grain UNION ALL SELECT 96)
GROUP BY workspace_id, app_key, segment_key, grain, quarter / grain * grain;
