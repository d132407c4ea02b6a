-- Weekly cohort retention: learners by the week (Monday, UTC) of their first
-- event and each week they were active in.
WITH activity AS (
    SELECT DISTINCT user_id, CAST(date_trunc('week', CAST(dt AS TIMESTAMP)) AS DATE) AS week
    FROM events_unique
),
cohort AS (
    SELECT user_id, MIN(week) AS first_week FROM activity GROUP BY user_id
)
SELECT c.first_week AS cohort_week, a.week AS active_week, COUNT(*) AS learners
FROM activity a
JOIN cohort c ON c.user_id = a.user_id
GROUP BY c.first_week, a.week
ORDER BY cohort_week, active_week
