-- The funnel per category, counted in learner-item pairs: viewed the item,
-- started it (any progress), bought it, completed it (progress of at least
-- 0.9). Each stage counts the pairs that reached it, whatever the order.
WITH pairs AS (
    SELECT
        c.category,
        e.user_id,
        e.item_id,
        MAX(CASE WHEN e.type = 'view' THEN 1 ELSE 0 END) AS viewed,
        MAX(CASE WHEN e.type = 'progress' THEN 1 ELSE 0 END) AS started,
        MAX(CASE WHEN e.type = 'purchase' THEN 1 ELSE 0 END) AS purchased,
        MAX(CASE WHEN e.type = 'progress' AND e.progress >= 0.9 THEN 1 ELSE 0 END) AS completed
    FROM events_unique e
    JOIN catalogue c ON c.id = e.item_id
    GROUP BY c.category, e.user_id, e.item_id
)
SELECT
    category,
    SUM(viewed) AS viewed,
    SUM(started) AS started,
    SUM(purchased) AS purchased,
    SUM(completed) AS completed
FROM pairs
GROUP BY category
ORDER BY category
