-- The 20 items with the most GMV, with their buyers and what reviews say
-- (the review-sentiment table: reviews scored, share labelled positive).
WITH sales AS (
    SELECT item_id, COUNT(*) AS purchases, COUNT(DISTINCT user_id) AS buyers, SUM(price) AS gmv_cny
    FROM purchases_cny
    WHERE item_id IS NOT NULL
    GROUP BY item_id
),
reviews AS (
    SELECT
        item_id,
        COUNT(*) AS reviews,
        AVG(CASE WHEN label = 'positive' THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END) AS positive_share
    FROM review_sentiment
    WHERE item_id IS NOT NULL
    GROUP BY item_id
)
SELECT
    s.item_id, c.title, c.category, s.purchases, s.buyers, s.gmv_cny,
    COALESCE(r.reviews, 0) AS reviews, r.positive_share
FROM sales s
LEFT JOIN catalogue c ON c.id = s.item_id
LEFT JOIN reviews r ON r.item_id = s.item_id
ORDER BY s.gmv_cny DESC, s.item_id
LIMIT 20
