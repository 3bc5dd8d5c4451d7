-- KPIs and custom events on PostgreSQL (CONTRACT section 12; docs/architecture.md, "Daily KPIs").
-- Days are local dates in the workspace's zone, as days since 1970-01-01; a change of
-- the zone rebuilds person_days and kpi_counts from the raw sessions.

-- Sessions starting per person and local day, per app (app_key 0 = all apps): the state
-- that makes distinct counts exact under any arrival order.
CREATE TABLE person_days (
    workspace_id BIGINT NOT NULL,
    app_key      INTEGER NOT NULL,
    person       TEXT NOT NULL,
    day          INTEGER NOT NULL,
    sessions     BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, app_key, person, day)
);

-- DAU, MAU, new users and uninstalls per app (0 = all) and local day.
CREATE TABLE kpi_counts (
    workspace_id BIGINT NOT NULL,
    app_key      INTEGER NOT NULL,
    kind         INTEGER NOT NULL,          -- 1 dau, 2 mau, 3 new users, 4 uninstalls (kpi.py)
    day          INTEGER NOT NULL,
    value        BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, app_key, kind, day)
);

-- Custom event names (track's "event"), with a compact key for the rollup.
CREATE TABLE event_names (
    workspace_id BIGINT NOT NULL,
    name_key     INTEGER NOT NULL,
    name         TEXT NOT NULL,
    PRIMARY KEY (workspace_id, name_key),
    UNIQUE (workspace_id, name)
);

-- track events per name, app (0 = all), tracked segment (0 = all users) and UTC quarter,
-- hour and day (grain 1, 4, 96 quarters; first_quarter a multiple of grain).
CREATE TABLE event_counts (
    workspace_id  BIGINT NOT NULL,
    app_key       INTEGER NOT NULL,
    segment_key   INTEGER NOT NULL,
    name_key      INTEGER NOT NULL,
    grain         INTEGER NOT NULL,
    first_quarter BIGINT NOT NULL,
    events        BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, app_key, segment_key, name_key, grain, first_quarter)
);
