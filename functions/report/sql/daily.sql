-- Per day (UTC): events, active learners, purchases and GMV.
SELECT
    e.dt AS day,
    COUNT(*) AS events,
    COUNT(DISTINCT e.user_id) AS active_learners,
    SUM(CASE WHEN e.type = 'purchase' THEN 1 ELSE 0 END) AS purchases,
    COALESCE(SUM(CASE WHEN e.type = 'purchase' AND e.currency = 'CNY' THEN e.price END), 0) AS gmv_cny
FROM events_unique e
GROUP BY e.dt
ORDER BY day
