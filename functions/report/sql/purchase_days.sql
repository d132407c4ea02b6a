-- Per learner and purchase day (UTC): what they spent in CNY. Lifetime value
-- counts the purchases of one day once, as Fader, Hardie and Lee (2005) do.
SELECT user_id, dt AS day, SUM(price) AS spend
FROM purchases_cny
GROUP BY user_id, dt
ORDER BY user_id, day
