-- One experiment's counts per variant ({{experiment}}: its name). A learner
-- belongs to the variant the edge assigned: the one on the exposures it
-- logged and on the events it forwarded. Exposures are recommendation
-- answers shown; clicks are answers clicked at least once (a click event
-- carrying the answer's recommendation id); a converter bought at least
-- once; revenue is the CNY each learner spent, summed and squared for the
-- variance of revenue per learner.
WITH shown AS (
    SELECT variant, user_id, COUNT(DISTINCT recommendation_id) AS exposures
    FROM exposures_unique
    WHERE experiment = {{experiment}} AND variant IS NOT NULL AND user_id IS NOT NULL
    GROUP BY variant, user_id
),
clicked AS (
    SELECT x.variant, x.user_id, COUNT(DISTINCT x.recommendation_id) AS clicks
    FROM exposures_unique x
    JOIN events_unique e ON e.recommendation_id = x.recommendation_id AND e.user_id = x.user_id
    WHERE x.experiment = {{experiment}} AND e.type = 'click'
    GROUP BY x.variant, x.user_id
),
acted AS (
    SELECT
        variant,
        user_id,
        MAX(CASE WHEN type = 'purchase' THEN 1 ELSE 0 END) AS converted,
        COALESCE(SUM(CASE WHEN type = 'purchase' AND currency = 'CNY' THEN price END), 0) AS revenue
    FROM events_unique
    WHERE experiment = {{experiment}} AND variant IS NOT NULL
    GROUP BY variant, user_id
),
learner AS (
    SELECT
        COALESCE(s.variant, a.variant) AS variant,
        COALESCE(s.user_id, a.user_id) AS user_id,
        COALESCE(s.exposures, 0) AS exposures,
        COALESCE(c.clicks, 0) AS clicks,
        COALESCE(a.converted, 0) AS converted,
        COALESCE(a.revenue, 0) AS revenue
    FROM shown s
    FULL OUTER JOIN acted a ON a.variant = s.variant AND a.user_id = s.user_id
    LEFT JOIN clicked c ON c.variant = COALESCE(s.variant, a.variant) AND c.user_id = COALESCE(s.user_id, a.user_id)
)
SELECT
    variant,
    COUNT(*) AS learners,
    SUM(exposures) AS exposures,
    SUM(clicks) AS clicks,
    SUM(converted) AS converters,
    SUM(revenue) AS revenue,
    SUM(revenue * revenue) AS revenue_squares
FROM learner
GROUP BY variant
ORDER BY variant
