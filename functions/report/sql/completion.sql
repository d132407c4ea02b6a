-- Completion per item: learners who started it (any progress), learners who
-- completed it (progress of at least 0.9) and their share; the 20 items
-- with the most starters.
WITH learner_item AS (
    SELECT item_id, user_id, MAX(progress) AS best
    FROM events_unique
    WHERE type = 'progress' AND item_id IS NOT NULL
    GROUP BY item_id, user_id
)
SELECT
    li.item_id,
    c.title,
    c.format,
    COUNT(*) AS started,
    SUM(CASE WHEN li.best >= 0.9 THEN 1 ELSE 0 END) AS completed,
    CAST(SUM(CASE WHEN li.best >= 0.9 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS completion_rate
FROM learner_item li
LEFT JOIN catalogue c ON c.id = li.item_id
GROUP BY li.item_id, c.title, c.format
ORDER BY started DESC, li.item_id
LIMIT 20
