# One knowedge Lambda function (`provided.al2023`, a Rust `bootstrap` built by
# `cargo xtask package`) with its own IAM role, log group, dead-letter queue and settings.
#
# Settings come in two maps:
# * `environment`: plain settings, passed as environment variables NAME = value;
# * `secret_environment`: NAME = Secrets Manager secret ARN. The function gets the environment
#   variable `<NAME>_SECRET` = ARN and reads the value at cold start from the AWS Parameters and
#   Secrets Lambda extension on localhost; the role may read exactly those secrets.
#
# Object storage access is granted from `object_access`: object actions on
# `<bucket ARN>/<prefix>*`, and `s3:ListBucket` on the bucket limited to `<prefix>*`.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  package_path = coalesce(var.package_path, "${var.source_root}/target/lambda/${var.binary}/bootstrap.zip")

  secret_variables = { for name, arn in var.secret_environment : "${name}_SECRET" => arn }

  # Settings of the Parameters and Secrets extension: its port and a cache that outlives the
  # cold start only as long as `secrets_cache_ttl_seconds`.
  extension_variables = {
    PARAMETERS_SECRETS_EXTENSION_HTTP_PORT = "2773"
    SECRETS_MANAGER_TTL                    = tostring(var.secrets_cache_ttl_seconds)
  }

  variables = merge(
    var.environment,
    local.secret_variables,
    length(var.secret_environment) > 0 ? local.extension_variables : {},
  )

  layers = length(var.secret_environment) > 0 ? concat([var.secrets_extension_layer_arn], var.extra_layers) : var.extra_layers

  # object_access entries, split into object-level and bucket-level (listing) permissions.
  object_statements = [
    for i, a in var.object_access : {
      sid       = "Objects${i}"
      actions   = sort([for x in a.actions : x if x != "s3:ListBucket"])
      resources = ["${var.buckets[a.bucket]}/${a.prefix}*"]
    } if length([for x in a.actions : x if x != "s3:ListBucket"]) > 0
  ]
  list_statements = [
    for i, a in var.object_access : {
      sid      = "List${i}"
      bucket   = var.buckets[a.bucket]
      prefixes = ["${a.prefix}*"]
      # A whole-bucket grant (empty prefix) needs no prefix condition.
      whole = a.prefix == ""
    } if contains(a.actions, "s3:ListBucket")
  ]
}

# ---------------------------------------------------------------------------------------------
# IAM role: logs of this function, traces, its dead-letter queue, its secrets, its objects.
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.name
  description          = "Execution role of the ${var.name} Lambda function"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "DeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  # The stack's key: S3 objects (SSE-KMS), secrets, the dead-letter queue, environment variables.
  statement {
    sid       = "StackKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }

  dynamic "statement" {
    for_each = length(var.secret_environment) > 0 ? [1] : []
    content {
      sid       = "OwnSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = sort(distinct(values(var.secret_environment)))
    }
  }

  dynamic "statement" {
    for_each = local.object_statements
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }

  dynamic "statement" {
    for_each = local.list_statements
    content {
      sid       = statement.value.sid
      actions   = ["s3:ListBucket"]
      resources = [statement.value.bucket]
      dynamic "condition" {
        for_each = statement.value.whole ? [] : [1]
        content {
          test     = "StringLike"
          variable = "s3:prefix"
          values   = statement.value.prefixes
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# X-Ray: PutTraceSegments and PutTelemetryRecords only support "*" as resource, so the AWS
# managed write-only policy is attached instead of an inline statement.
resource "aws_iam_role_policy_attachment" "xray" {
  count = var.tracing_mode == "PassThrough" ? 0 : 1

  role       = aws_iam_role.this.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

# ---------------------------------------------------------------------------------------------
# Logs and dead letters.
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# Failed asynchronous invocations (schedules) land here after Lambda's retries.
resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-dlq"
  kms_master_key_id         = var.kms_key_arn
  message_retention_seconds = 1209600
  tags                      = var.tags
}

data "aws_iam_policy_document" "dlq" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.dlq.arn]
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

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.dlq.json
}

# ---------------------------------------------------------------------------------------------
# The function.
# ---------------------------------------------------------------------------------------------

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:The function talks only to S3, Secrets Manager, CloudWatch and the Cloudflare/Spin HTTPS APIs, all over TLS with IAM or bearer authentication; a VPC would add NAT cost and cold-start time without protecting anything it reaches.
  #checkov:skip=CKV_AWS_272:The package is built in CI from the repository (cargo xtask package) and deployed by Terraform from that build; Lambda code signing is not used.
  function_name = var.name
  description   = var.description
  role          = aws_iam_role.this.arn

  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.architecture]
  memory_size   = var.memory_size
  timeout       = var.timeout
  layers        = local.layers

  filename         = local.package_path
  source_code_hash = var.package_hash != null ? var.package_hash : filebase64sha256(local.package_path)

  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  ephemeral_storage {
    size = var.ephemeral_storage_mb
  }

  environment {
    variables = local.variables
  }

  tracing_config {
    mode = var.tracing_mode
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq.arn
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tags = merge(var.tags, { "knowedge:binary" = var.binary })

  lifecycle {
    precondition {
      condition     = alltrue([for a in var.object_access : contains(keys(var.buckets), a.bucket)])
      error_message = "Every object_access entry must name a bucket given in `buckets`."
    }
    precondition {
      condition     = length(var.secret_environment) == 0 || var.secrets_extension_layer_arn != null
      error_message = "secret_environment needs secrets_extension_layer_arn (the Parameters and Secrets extension reads the values)."
    }
  }

  depends_on = [
    aws_iam_role_policy.this,
    aws_cloudwatch_log_group.this,
  ]
}

# Asynchronous invocations (the schedules): how often Lambda retries before the dead-letter queue.
resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = var.async_retry_attempts
  maximum_event_age_in_seconds = var.async_max_event_age_seconds
}
