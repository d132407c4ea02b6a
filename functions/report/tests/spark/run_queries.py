"""Runs knowedge's report SQL on Spark (PySpark, local mode) over a lake directory.

Usage: python run_queries.py LAKE_DIR QUERIES_JSON OUT_JSON

QUERIES_JSON holds {"views": [statement, ...], "queries": [{"name", "sql"}, ...]}. The lake's
tables are registered as temporary views read in place (Hive partitions as strings, times in
UTC); the views' `CREATE VIEW` runs as `CREATE OR REPLACE TEMPORARY VIEW`, as Spark does not keep
permanent views over temporary ones. OUT_JSON gets {name: [row, ...]} with dates and times as ISO
text and decimals as floats.
"""

import datetime
import decimal
import json
import os
import re
import sys

from pyspark.sql import SparkSession

LAKE, QUERIES, OUT = sys.argv[1], sys.argv[2], sys.argv[3]

SCHEMAS = {
    "dead_letter": (
        "received_at STRING, `index` BIGINT, raw STRING, raw_sha256 STRING, "
        "problems ARRAY<STRUCT<field: STRING, rule: STRING, message: STRING>>, "
        "dropped_fields ARRAY<STRING>, dropped_unnamed BIGINT, key_name STRING"
    ),
    "audit": "seq BIGINT, `at` STRING, action STRING, key_name STRING, details STRING, prev STRING, digest STRING",
    "catalogue": "id STRING, title STRING, format STRING, category STRING, price DOUBLE, currency STRING",
}

spark = (
    SparkSession.builder.master("local[2]")
    .appName("knowedge-sql-parity")
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    .config("spark.sql.shuffle.partitions", "4")
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")


def path(prefix):
    return os.path.join(LAKE, prefix)


def register_parquet(name, prefix, ddl):
    location = path(prefix)
    if os.path.isdir(location) and any(f.endswith(".parquet") for _, _, fs in os.walk(location) for f in fs):
        df = spark.read.option("basePath", location).parquet(location)
    else:
        df = spark.createDataFrame([], ddl)
    df.createOrReplaceTempView(name)


def register_json(name, prefix, partitioned):
    location = path(prefix)
    ddl = SCHEMAS[name]
    files = [f for _, _, fs in os.walk(location) for f in fs] if os.path.isdir(location) else []
    if files:
        reader = spark.read.schema(ddl).option("mode", "DROPMALFORMED")
        df = reader.option("basePath", location).json(location) if partitioned else reader.json(location)
    else:
        df = spark.createDataFrame([], ddl + (", dt STRING" if partitioned else ""))
    df.createOrReplaceTempView(name)


EVENTS_DDL = (
    "event_id STRING, user_id STRING, item_id STRING, ts TIMESTAMP, received_at TIMESTAMP, price DOUBLE, "
    "currency STRING, rating INT, progress DOUBLE, text STRING, query STRING, session_id STRING, "
    "experiment STRING, variant STRING, recommendation_id STRING, schema_version INT, pii_redactions INT, "
    "key_name STRING, dt STRING, type STRING"
)
register_parquet("events", "events", EVENTS_DDL)
register_parquet(
    "review_sentiment",
    "review-sentiment",
    "event_id STRING, item_id STRING, ts TIMESTAMP, label STRING, score FLOAT, model_id STRING, "
    "scored_at TIMESTAMP, dt STRING",
)
register_parquet(
    "exposures",
    "exposures",
    "recommendation_id STRING, ts TIMESTAMP, received_at TIMESTAMP, user_id STRING, model_id STRING, "
    "experiment STRING, variant STRING, items ARRAY<STRING>, key_name STRING, dt STRING",
)
register_json("dead_letter", "dead-letter", True)
register_json("audit", "audit", False)
catalogue = path("catalogue/items.json")
if os.path.isfile(catalogue):
    spark.read.schema(SCHEMAS["catalogue"]).option("multiLine", "true").json(catalogue).createOrReplaceTempView("catalogue")
else:
    spark.createDataFrame([], SCHEMAS["catalogue"]).createOrReplaceTempView("catalogue")

with open(QUERIES) as f:
    work = json.load(f)
for statement in work["views"]:
    spark.sql(re.sub(r"^\s*CREATE VIEW", "CREATE OR REPLACE TEMPORARY VIEW", statement))


def plain(v):
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


out = {}
for q in work["queries"]:
    rows = spark.sql(q["sql"]).collect()
    out[q["name"]] = [{k: plain(v) for k, v in r.asDict().items()} for r in rows]
with open(OUT, "w") as f:
    json.dump(out, f)
spark.stop()
