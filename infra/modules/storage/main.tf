# Storage for knowedge: one customer-managed KMS key, the lake bucket (events, dead letters,
# review sentiment, privacy records, the audit log), the models bucket (signed model artifacts
# and the `current` pointer) and a bucket that receives the S3 server access logs of both.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region
  partition  = data.aws_partition.current.partition

  bucket_names = {
    lake   = coalesce(var.lake_bucket_name, "${var.name}-lake-${local.account_id}-${local.region}")
    models = coalesce(var.models_bucket_name, "${var.name}-models-${local.account_id}-${local.region}")
  }
  # Lake prefixes with a retention backstop: prefix => days (0 = keep forever, no rule).
  lake_retention = {
    for prefix, days in {
      "events"      = var.event_retention_days
      "dead-letter" = var.dead_letter_retention_days
    } : prefix => days if days > 0
  }

  log_bucket_name = coalesce(var.log_bucket_name, "${var.name}-access-logs-${local.account_id}-${local.region}")
}

# ---------------------------------------------------------------------------------------------
# KMS key shared by the buckets, secrets, logs, queues, topics and schedules of the stack.
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111:A key policy's resource "*" is the key itself; the account statement is the standard one that lets IAM policies govern the key.
  #checkov:skip=CKV_AWS_356:A key policy's resource "*" is the key itself, not every resource.
  #checkov:skip=CKV_AWS_109:The account root must administer its own key, or the key becomes unmanageable.
  # The account administers the key; IAM policies of the functions and roles grant its use.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch Logs encrypts the log groups of the functions, the API and the training jobs.
  statement {
    sid = "CloudWatchLogsEncrypts"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }

  # CloudWatch alarms and EventBridge rules publish to the encrypted alarm topic.
  statement {
    sid       = "AlarmPublishersUseKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "main" {
  description             = "${var.name}: lake, models, secrets, logs, queues and topics"
  enable_key_rotation     = true
  rotation_period_in_days = var.kms_rotation_days
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.main.key_id
}

# ---------------------------------------------------------------------------------------------
# Lake and models buckets.
# ---------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "data" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice left to the operator; versioning and the audit log protect against mistakes within the region.
  #checkov:skip=CKV2_AWS_62:Nothing consumes S3 event notifications; compaction and training run on schedules.
  for_each = local.bucket_names

  bucket        = each.value
  force_destroy = false
  tags          = merge(var.tags, { "knowedge:bucket" = each.key })
}

resource "aws_s3_bucket_ownership_controls" "data" {
  for_each = aws_s3_bucket.data

  bucket = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  for_each = aws_s3_bucket.data

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "data" {
  for_each = aws_s3_bucket.data

  bucket = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  for_each = aws_s3_bucket.data

  bucket = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    # Bucket keys cut the number of KMS requests (and their cost) for many small objects.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "data" {
  for_each = aws_s3_bucket.data

  bucket        = each.value.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "${each.key}/"
}

data "aws_iam_policy_document" "data_bucket" {
  for_each = aws_s3_bucket.data

  # Every request must use TLS.
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]
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

resource "aws_s3_bucket_policy" "data" {
  for_each = aws_s3_bucket.data

  bucket = each.value.id
  policy = data.aws_iam_policy_document.data_bucket[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.data]
}

# Lifecycle.
#
# Ingestion writes one Parquet file per accepted batch (`events/dt=.../type=.../part-*.parquet`).
# Compaction (hourly) merges those per-batch files of a partition into larger files and deletes
# the per-batch originals, and it removes partitions older than KNOWEDGE_RETENTION_DAYS. Because
# the bucket is versioned, a deleted object first becomes a non-current version; the rules below
# make the deletion final:
#
# * `noncurrent-versions`: non-current versions (per-batch files replaced by compaction, files
#   rewritten by an erasure, expired partitions) are removed `noncurrent_version_days` after they
#   became non-current. This bounds how long erased personal data survives in old versions, so
#   keep it within the erasure deadline (30 days by default).
# * `events-retention` and `dead-letter-retention`: a backstop for the retention that compaction
#   enforces. Objects under `events/` and `dead-letter/` expire a few days after the retention
#   the functions use (S3 lifecycle counts from the object's creation, which for these prefixes is
#   the time the records were received or compacted).
# * Incomplete multipart uploads are aborted after a week; expired delete markers are removed.
# * `audit/`, `privacy/`, `review-sentiment/` and `catalogue/` objects are never expired by age.
# * Models bucket: artifacts are kept (a rollback needs older versions); replaced `current`
#   pointers and deleted artifacts expire as non-current versions.
resource "aws_s3_bucket_lifecycle_configuration" "data" {
  for_each = aws_s3_bucket.data

  bucket = each.value.id

  rule {
    id     = "noncurrent-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  rule {
    id     = "expired-delete-markers"
    status = "Enabled"
    filter {}
    expiration {
      expired_object_delete_marker = true
    }
  }

  # Lake only: retention backstops for events/ and dead-letter/ (0 days = keep forever).
  dynamic "rule" {
    for_each = each.key == "lake" ? local.lake_retention : {}
    content {
      id     = "${rule.key}-retention"
      status = "Enabled"
      filter {
        prefix = "${rule.key}/"
      }
      expiration {
        days = rule.value + var.retention_grace_days
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.data]
}

# ---------------------------------------------------------------------------------------------
# Access-log bucket. S3 server access logging cannot deliver to a bucket whose default
# encryption is SSE-KMS, so this bucket uses SSE-S3.
# ---------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_145:S3 server access log delivery supports only SSE-S3 on the target bucket, not SSE-KMS.
  #checkov:skip=CKV_AWS_144:Access logs are kept in the region; replication is left to the operator.
  #checkov:skip=CKV2_AWS_62:Nothing consumes event notifications for access logs.
  bucket        = local.log_bucket_name
  force_destroy = false
  tags          = merge(var.tags, { "knowedge:bucket" = "access-logs" })
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.logs]
}

# S3 delivers the server access logs of the stack's buckets (lake, models, Athena results) here.
data "aws_iam_policy_document" "logs_bucket" {
  statement {
    sid       = "S3ServerAccessLogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
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

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}
