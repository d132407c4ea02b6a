# Alarms of the stack, all sent to one KMS-encrypted SNS topic:
# * ingestion: API 5xx answers, ingest function errors and throttles;
# * dead-letter growth: the `DeadLetters` metric of ingestion (rejected records) and messages in
#   the dead-letter queues of failed asynchronous invocations;
# * training: failed training runs (Lambda errors, or failed AWS Batch jobs through an
#   EventBridge rule) and no model promoted for `no_model_days` days;
# * compaction and report errors, and edge publish failures (`EdgePublishFailures`).
#
# The functions' own metrics are CloudWatch Embedded Metric Format lines in namespace
# `knowedge` with the single dimension `function` (the binary name, e.g. "knowedge-train").

data "aws_caller_identity" "current" {}

locals {
  actions = [aws_sns_topic.this.arn]
}

resource "aws_sns_topic" "this" {
  name              = var.name
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "topic" {
  statement {
    sid       = "AlarmsAndRulesPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]
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

resource "aws_sns_topic_policy" "this" {
  arn    = aws_sns_topic.this.arn
  policy = data.aws_iam_policy_document.topic.json
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = each.value
}

# ---------------------------------------------------------------------------------------------
# Ingestion.
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.name}-ingest-5xx"
  alarm_description   = "The ingestion API answered 5xx (function errors, timeouts or throttling)."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5xx"
  dimensions          = { ApiId = var.api_id }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.api_5xx_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "ingest_errors" {
  alarm_name          = "${var.name}-ingest-errors"
  alarm_description   = "The ingest function failed invocations."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.functions.ingest.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.ingest_error_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "ingest_throttles" {
  alarm_name          = "${var.name}-ingest-throttles"
  alarm_description   = "The ingest function hit its reserved concurrency: requests were throttled (clients see 5xx/429)."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = var.functions.ingest.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

# ---------------------------------------------------------------------------------------------
# Dead letters.
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = "${var.name}-dead-letter-growth"
  alarm_description   = "Ingestion rejected more than ${var.dead_letter_threshold} records into dead-letter/ within ${var.dead_letter_period_seconds} seconds."
  namespace           = "knowedge"
  metric_name         = "DeadLetters"
  dimensions          = { function = var.functions.ingest.metric_function }
  statistic           = "Sum"
  period              = var.dead_letter_period_seconds
  evaluation_periods  = 1
  threshold           = var.dead_letter_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dead_letter_queues" {
  for_each = var.dead_letter_queues

  alarm_name          = "${var.name}-${each.key}-dlq"
  alarm_description   = "Failed asynchronous invocations are waiting in ${each.value}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

# ---------------------------------------------------------------------------------------------
# Compaction, training, model delivery.
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "compact_errors" {
  alarm_name          = "${var.name}-compact-errors"
  alarm_description   = "A compaction run failed."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.functions.compact.function_name }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "report_errors" {
  alarm_name          = "${var.name}-report-errors"
  alarm_description   = "The business dashboard could not be rebuilt; reports/ keeps the previous one."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.functions.report.function_name }
  statistic           = "Sum"
  period              = 86400
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "train_errors" {
  count = var.training_mode == "lambda" ? 1 : 0

  alarm_name          = "${var.name}-train-errors"
  alarm_description   = "A training run on Lambda failed."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.functions.train.function_name }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

# Failed GPU training jobs: AWS Batch reports job state changes to EventBridge.
resource "aws_cloudwatch_event_rule" "batch_failed" {
  count = var.training_mode == "gpu_batch" ? 1 : 0

  name        = "${var.name}-train-gpu-failed"
  description = "A GPU training job on AWS Batch failed."
  event_pattern = jsonencode({
    source      = ["aws.batch"]
    detail-type = ["Batch Job State Change"]
    detail = {
      status   = ["FAILED"]
      jobQueue = [var.batch_job_queue_arn]
    }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "batch_failed" {
  count = var.training_mode == "gpu_batch" ? 1 : 0

  rule      = aws_cloudwatch_event_rule.batch_failed[0].name
  target_id = "alarm-topic"
  arn       = aws_sns_topic.this.arn
  input_transformer {
    input_paths = {
      job    = "$.detail.jobName"
      id     = "$.detail.jobId"
      reason = "$.detail.statusReason"
    }
    input_template = "\"knowedge GPU training job <job> (<id>) failed: <reason>\""
  }
}

resource "aws_cloudwatch_metric_alarm" "no_model_promoted" {
  alarm_name          = "${var.name}-no-model-promoted"
  alarm_description   = "No model was promoted for ${var.no_model_days} days (training fails, finds no better model, or does not run)."
  namespace           = "knowedge"
  metric_name         = "ModelsPromoted"
  dimensions          = { function = var.functions.train.metric_function }
  statistic           = "Sum"
  period              = 86400
  evaluation_periods  = var.no_model_days
  datapoints_to_alarm = var.no_model_days
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "edge_publish_failures" {
  for_each = {
    train   = var.functions.train.metric_function
    compact = var.functions.compact.metric_function
  }

  alarm_name          = "${var.name}-${each.key}-edge-publish-failures"
  alarm_description   = "${each.value} could not publish a model to Workers KV or Spin after its retries; the edge serves the previous model."
  namespace           = "knowedge"
  metric_name         = "EdgePublishFailures"
  dimensions          = { function = each.value }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}
