-- The views every report reads. Portable: DataFusion, Spark SQL and Athena
-- (Trino) run these statements unchanged (Spark as temporary views, as it
-- does not keep permanent views over temporary tables).

-- Every event once. A client may send a batch again and ingestion keeps
-- per-batch files until compaction, so `events` can hold an `event_id`
-- more than once; the copy received first is kept.
CREATE VIEW events_unique AS
SELECT event_id, user_id, item_id, ts, received_at, price, currency, rating, progress,
       session_id, experiment, variant, recommendation_id, key_name, dt, type
FROM (
    SELECT e.*, ROW_NUMBER() OVER (PARTITION BY e.event_id ORDER BY e.received_at, e.ts) AS copy_number
    FROM events e
) numbered
WHERE copy_number = 1;

-- Purchases paid in CNY, the currency of the money panels.
CREATE VIEW purchases_cny AS
SELECT event_id, user_id, item_id, ts, price, experiment, variant, recommendation_id, dt
FROM events_unique
WHERE type = 'purchase' AND currency = 'CNY' AND price IS NOT NULL;

-- Every exposure once (an edge may send a batch again); the copy received first.
CREATE VIEW exposures_unique AS
SELECT recommendation_id, ts, received_at, user_id, model_id, experiment, variant, items, key_name, dt
FROM (
    SELECT x.*, ROW_NUMBER() OVER (PARTITION BY x.recommendation_id ORDER BY x.received_at) AS copy_number
    FROM exposures x
) numbered
WHERE copy_number = 1;
