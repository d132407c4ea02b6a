-- Headline numbers. Active learners are those with any event on the last
-- day that has events (dau), in the 7 days ending on it (wau) and in the 30
-- (mau); GMV, paying learners, ARPPU (GMV / paying learners) and
-- conversion (paying learners / learners) cover the whole lake.
WITH activity AS (
    SELECT DISTINCT user_id, CAST(dt AS DATE) AS day FROM events_unique
),
last_day AS (
    SELECT MAX(day) AS day FROM activity
),
active AS (
    SELECT
        COUNT(DISTINCT CASE WHEN a.day = l.day THEN a.user_id END) AS dau,
        COUNT(DISTINCT CASE WHEN a.day > l.day - INTERVAL '7' DAY THEN a.user_id END) AS wau,
        COUNT(DISTINCT CASE WHEN a.day > l.day - INTERVAL '30' DAY THEN a.user_id END) AS mau,
        COUNT(DISTINCT a.user_id) AS learners
    FROM activity a CROSS JOIN last_day l
),
money AS (
    SELECT COALESCE(SUM(price), 0) AS gmv_cny, COUNT(DISTINCT user_id) AS paying_learners, COUNT(*) AS purchases
    FROM purchases_cny
)
SELECT
    a.dau, a.wau, a.mau, a.learners,
    m.gmv_cny, m.purchases, m.paying_learners,
    CASE WHEN m.paying_learners > 0 THEN m.gmv_cny / m.paying_learners END AS arppu_cny,
    CASE WHEN a.learners > 0 THEN CAST(m.paying_learners AS DOUBLE) / a.learners END AS conversion
FROM active a CROSS JOIN money m
