-- Recommendation performance per model and variant: answers shown, answers
-- clicked (a click event with the answer's recommendation id), click-through
-- rate, and the purchases attributed to an answer (a purchase event with its
-- recommendation id) with their GMV in CNY.
WITH shown AS (
    SELECT model_id, COALESCE(variant, '(none)') AS variant, recommendation_id
    FROM exposures_unique
),
clicks AS (
    SELECT DISTINCT recommendation_id FROM events_unique WHERE type = 'click' AND recommendation_id IS NOT NULL
),
sales AS (
    SELECT recommendation_id, COUNT(*) AS purchases, SUM(price) AS gmv_cny
    FROM purchases_cny
    WHERE recommendation_id IS NOT NULL
    GROUP BY recommendation_id
)
SELECT
    s.model_id,
    s.variant,
    COUNT(*) AS exposures,
    COUNT(c.recommendation_id) AS clicked,
    CASE WHEN COUNT(*) > 0 THEN CAST(COUNT(c.recommendation_id) AS DOUBLE) / COUNT(*) END AS ctr,
    COALESCE(SUM(p.purchases), 0) AS attributed_purchases,
    COALESCE(SUM(p.gmv_cny), 0) AS attributed_gmv_cny
FROM shown s
LEFT JOIN clicks c ON c.recommendation_id = s.recommendation_id
LEFT JOIN sales p ON p.recommendation_id = s.recommendation_id
GROUP BY s.model_id, s.variant
ORDER BY s.model_id, s.variant
