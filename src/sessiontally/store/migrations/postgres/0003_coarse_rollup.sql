-- Coarser levels of the rollup, so that a long series reads few rows (store/rollup.py).
-- grain: quarters per row (4 = a UTC hour, 96 = a UTC day); first_quarter is a multiple
-- of grain. Same keys as session_counts otherwise; kept in the same transaction.

CREATE TABLE session_counts_coarse (
    workspace_id  BIGINT NOT NULL,
    app_key       INTEGER NOT NULL,
    segment_key   INTEGER NOT NULL,
    grain         INTEGER NOT NULL,
    first_quarter BIGINT NOT NULL,
    sessions      BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, app_key, segment_key, grain, first_quarter)
);

-- Quarters are never negative (no session starts before 1970), so / truncates = floors.
INSERT INTO session_counts_coarse (workspace_id, app_key, segment_key, grain, first_quarter, sessions)
SELECT c.workspace_id, c.app_key, c.segment_key, g.grain, c.quarter / g.grain * g.grain, SUM(c.sessions)
FROM session_counts c CROSS JOIN (VALUES (4), (96)) AS g (grain)
GROUP BY c.workspace_id, c.app_key, c.segment_key, g.grain, c.quarter / g.grain * g.grain;
