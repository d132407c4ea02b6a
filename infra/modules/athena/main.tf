# Query the lake in place: a Glue Data Catalog database with one table per lake table, using
# partition projection (no crawler, no MSCK REPAIR, no copy), and an Athena workgroup whose
# settings are enforced and whose results are encrypted with the stack's KMS key.
#
# The column lists below are the Arrow schemas the lake writes, in order, as Hive types. A test
# in the workspace parses this file and compares them with the code: change both together.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  lake       = "s3://${var.lake_bucket_name}"
  dt_range   = "${var.projection_start_date},NOW+1DAYS"
  event_type = "view,click,progress,purchase,subscribe,rate,review,search"
}

resource "aws_glue_catalog_database" "this" {
  name        = var.database_name
  description = "knowedge lake (s3://${var.lake_bucket_name}): events, review sentiment, dead letters, audit log"
}

# Optional, account-wide: encrypt the Glue Data Catalog with the stack's key. Off by default
# because the setting is shared by every catalog user of the account and region.
resource "aws_glue_data_catalog_encryption_settings" "this" {
  count = var.manage_catalog_encryption ? 1 : 0

  data_catalog_encryption_settings {
    connection_password_encryption {
      return_connection_password_encrypted = true
      aws_kms_key_id                       = var.kms_key_arn
    }
    encryption_at_rest {
      catalog_encryption_mode = "SSE-KMS"
      sse_aws_kms_key_id      = var.kms_key_arn
    }
  }
}

# ---------------------------------------------------------------------------------------------
# events: s3://<lake>/events/dt=YYYY-MM-DD/type=<event type>/*.parquet
# ---------------------------------------------------------------------------------------------

resource "aws_glue_catalog_table" "events" {
  name          = "events"
  database_name = aws_glue_catalog_database.this.name
  description   = "Accepted learner events (pseudonymised), one Parquet file per batch until compaction merges them"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL                      = "TRUE"
    classification                = "parquet"
    "projection.enabled"          = "true"
    "projection.dt.type"          = "date"
    "projection.dt.format"        = "yyyy-MM-dd"
    "projection.dt.range"         = local.dt_range
    "projection.dt.interval"      = "1"
    "projection.dt.interval.unit" = "DAYS"
    "projection.type.type"        = "enum"
    "projection.type.values"      = local.event_type
    "storage.location.template"   = "${local.lake}/events/dt=$${dt}/type=$${type}/"
  }

  partition_keys {
    name = "dt"
    type = "string"
  }
  partition_keys {
    name = "type"
    type = "string"
  }

  storage_descriptor {
    location      = "${local.lake}/events/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    columns {
      name = "event_id"
      type = "string"
    }
    columns {
      name = "user_id"
      type = "string"
    }
    columns {
      name = "item_id"
      type = "string"
    }
    columns {
      name = "ts"
      type = "timestamp"
    }
    columns {
      name = "received_at"
      type = "timestamp"
    }
    columns {
      name = "price"
      type = "double"
    }
    columns {
      name = "currency"
      type = "string"
    }
    columns {
      name = "rating"
      type = "int"
    }
    columns {
      name = "progress"
      type = "double"
    }
    columns {
      name = "text"
      type = "string"
    }
    columns {
      name = "query"
      type = "string"
    }
    columns {
      name = "session_id"
      type = "string"
    }
    columns {
      name = "experiment"
      type = "string"
    }
    columns {
      name = "variant"
      type = "string"
    }
    columns {
      name = "recommendation_id"
      type = "string"
    }
    columns {
      name = "schema_version"
      type = "int"
    }
    columns {
      name = "pii_redactions"
      type = "int"
    }
    columns {
      name = "key_name"
      type = "string"
    }
  }
}

# ---------------------------------------------------------------------------------------------
# review_sentiment: s3://<lake>/review-sentiment/dt=YYYY-MM-DD/*.parquet
# ---------------------------------------------------------------------------------------------

resource "aws_glue_catalog_table" "review_sentiment" {
  name          = "review_sentiment"
  database_name = aws_glue_catalog_database.this.name
  description   = "Sentiment of review events, scored by training"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL                      = "TRUE"
    classification                = "parquet"
    "projection.enabled"          = "true"
    "projection.dt.type"          = "date"
    "projection.dt.format"        = "yyyy-MM-dd"
    "projection.dt.range"         = local.dt_range
    "projection.dt.interval"      = "1"
    "projection.dt.interval.unit" = "DAYS"
    "storage.location.template"   = "${local.lake}/review-sentiment/dt=$${dt}/"
  }

  partition_keys {
    name = "dt"
    type = "string"
  }

  storage_descriptor {
    location      = "${local.lake}/review-sentiment/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    columns {
      name = "event_id"
      type = "string"
    }
    columns {
      name = "item_id"
      type = "string"
    }
    columns {
      name = "ts"
      type = "timestamp"
    }
    columns {
      name = "label"
      type = "string"
    }
    columns {
      name = "score"
      type = "float"
    }
    columns {
      name = "model_id"
      type = "string"
    }
    columns {
      name = "scored_at"
      type = "timestamp"
    }
  }
}

# ---------------------------------------------------------------------------------------------
# exposures: s3://<lake>/exposures/dt=YYYY-MM-DD/*.parquet (one row per recommendation answer)
# ---------------------------------------------------------------------------------------------

resource "aws_glue_catalog_table" "exposures" {
  name          = "exposures"
  database_name = aws_glue_catalog_database.this.name
  description   = "Recommendation answers the edge showed: model, variant, items in order"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL                      = "TRUE"
    classification                = "parquet"
    "projection.enabled"          = "true"
    "projection.dt.type"          = "date"
    "projection.dt.format"        = "yyyy-MM-dd"
    "projection.dt.range"         = local.dt_range
    "projection.dt.interval"      = "1"
    "projection.dt.interval.unit" = "DAYS"
    "storage.location.template"   = "${local.lake}/exposures/dt=$${dt}/"
  }

  partition_keys {
    name = "dt"
    type = "string"
  }

  storage_descriptor {
    location      = "${local.lake}/exposures/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    columns {
      name = "recommendation_id"
      type = "string"
    }
    columns {
      name = "ts"
      type = "timestamp"
    }
    columns {
      name = "received_at"
      type = "timestamp"
    }
    columns {
      name = "user_id"
      type = "string"
    }
    columns {
      name = "model_id"
      type = "string"
    }
    columns {
      name = "experiment"
      type = "string"
    }
    columns {
      name = "variant"
      type = "string"
    }
    columns {
      name = "items"
      type = "array<string>"
    }
    columns {
      name = "key_name"
      type = "string"
    }
  }
}

# ---------------------------------------------------------------------------------------------
# dead_letter: s3://<lake>/dead-letter/dt=YYYY-MM-DD/*.ndjson (JSON lines)
# ---------------------------------------------------------------------------------------------

resource "aws_glue_catalog_table" "dead_letter" {
  name          = "dead_letter"
  database_name = aws_glue_catalog_database.this.name
  description   = "Records ingestion rejected, with the problems found"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL                      = "TRUE"
    classification                = "json"
    "projection.enabled"          = "true"
    "projection.dt.type"          = "date"
    "projection.dt.format"        = "yyyy-MM-dd"
    "projection.dt.range"         = local.dt_range
    "projection.dt.interval"      = "1"
    "projection.dt.interval.unit" = "DAYS"
    "storage.location.template"   = "${local.lake}/dead-letter/dt=$${dt}/"
  }

  partition_keys {
    name = "dt"
    type = "string"
  }

  storage_descriptor {
    location      = "${local.lake}/dead-letter/"
    input_format  = "org.apache.hadoop.mapred.TextInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

    ser_de_info {
      serialization_library = "org.openx.data.jsonserde.JsonSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    columns {
      name = "received_at"
      type = "string"
    }
    columns {
      name = "index"
      type = "bigint"
    }
    columns {
      name = "raw"
      type = "string"
    }
    columns {
      name = "raw_sha256"
      type = "string"
    }
    columns {
      name = "problems"
      type = "array<struct<field:string,rule:string,message:string>>"
    }
    columns {
      name = "dropped_fields"
      type = "array<string>"
    }
    columns {
      name = "dropped_unnamed"
      type = "bigint"
    }
    columns {
      name = "key_name"
      type = "string"
    }
  }
}

# ---------------------------------------------------------------------------------------------
# audit: s3://<lake>/audit/<sequence>.json, one JSON record per object, no partitions.
# ---------------------------------------------------------------------------------------------

resource "aws_glue_catalog_table" "audit" {
  name          = "audit"
  database_name = aws_glue_catalog_database.this.name
  description   = "Hash-chained audit log: promotions, erasures, admin key use"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL       = "TRUE"
    classification = "json"
  }

  storage_descriptor {
    location      = "${local.lake}/audit/"
    input_format  = "org.apache.hadoop.mapred.TextInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

    ser_de_info {
      serialization_library = "org.openx.data.jsonserde.JsonSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    columns {
      name = "seq"
      type = "bigint"
    }
    columns {
      name = "at"
      type = "string"
    }
    columns {
      name = "action"
      type = "string"
    }
    columns {
      name = "key_name"
      type = "string"
    }
    columns {
      name = "details"
      type = "string"
    }
    columns {
      name = "prev"
      type = "string"
    }
    columns {
      name = "digest"
      type = "string"
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Query results bucket and workgroup.
# ---------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "results" {
  #checkov:skip=CKV_AWS_144:Query results are disposable and expire; replication is not worth it.
  #checkov:skip=CKV2_AWS_62:Nothing consumes event notifications for query results.
  bucket        = coalesce(var.results_bucket_name, "${var.name}-athena-results-${data.aws_caller_identity.current.account_id}-${data.aws_region.current.region}")
  force_destroy = false
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "results" {
  bucket = aws_s3_bucket.results.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "results" {
  bucket                  = aws_s3_bucket.results.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "results" {
  bucket = aws_s3_bucket.results.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "results" {
  bucket = aws_s3_bucket.results.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "results" {
  bucket        = aws_s3_bucket.results.id
  target_bucket = var.log_bucket_name
  target_prefix = "athena-results/"
}

resource "aws_s3_bucket_lifecycle_configuration" "results" {
  bucket = aws_s3_bucket.results.id

  rule {
    id     = "expire-results"
    status = "Enabled"
    filter {}
    expiration {
      days = var.results_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.results]
}

data "aws_iam_policy_document" "results" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.results.arn, "${aws_s3_bucket.results.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "results" {
  bucket = aws_s3_bucket.results.id
  policy = data.aws_iam_policy_document.results.json

  depends_on = [aws_s3_bucket_public_access_block.results]
}

resource "aws_athena_workgroup" "this" {
  name          = var.name
  description   = "Analysts' queries of the knowedge lake"
  state         = "ENABLED"
  force_destroy = false

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff_per_query

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location       = "s3://${aws_s3_bucket.results.bucket}/results/"
      expected_bucket_owner = data.aws_caller_identity.current.account_id

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }

  tags = var.tags
}
