-- RFM per paying learner as of the last day with events: the day of their
-- last purchase (recency), their purchase days (frequency, a day's
-- purchases count once) and their CNY spent (monetary), each scored 1-5 by
-- quintile (5 = most recent, most frequent, most spent; ties broken by
-- learner), and the segment named from the recency and frequency scores.
WITH days AS (
    SELECT user_id, dt, SUM(price) AS spend
    FROM purchases_cny
    GROUP BY user_id, dt
),
learner AS (
    SELECT user_id, MAX(dt) AS last_purchase, COUNT(*) AS frequency, SUM(spend) AS monetary
    FROM days
    GROUP BY user_id
),
scored AS (
    SELECT
        user_id, last_purchase, frequency, monetary,
        NTILE(5) OVER (ORDER BY last_purchase, user_id) AS r_score,
        NTILE(5) OVER (ORDER BY frequency, user_id) AS f_score,
        NTILE(5) OVER (ORDER BY monetary, user_id) AS m_score
    FROM learner
)
SELECT
    user_id, last_purchase, frequency, monetary, r_score, f_score, m_score,
    CASE
        WHEN r_score >= 4 AND f_score >= 4 THEN 'champions'
        WHEN r_score >= 3 AND f_score >= 3 THEN 'loyal'
        WHEN r_score >= 4 THEN 'promising'
        WHEN r_score = 3 THEN 'needs_attention'
        WHEN f_score >= 3 THEN 'at_risk'
        ELSE 'hibernating'
    END AS segment
FROM scored
ORDER BY user_id
