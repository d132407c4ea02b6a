# EventBridge Scheduler schedules of the Lambda functions: compaction (hourly by default), the
# business dashboard (daily) and, when training runs on Lambda, CPU training (daily by default). The scheduler's role may invoke
# exactly these functions. GPU training on AWS Batch has its own schedule (gpu_training module).

data "aws_caller_identity" "current" {}

locals {
  targets = merge(
    {
      compact = {
        arn        = var.compact_function_arn
        expression = var.compact_schedule_expression
      }
    },
    var.report_function_arn != null ? {
      report = {
        arn        = var.report_function_arn
        expression = var.report_schedule_expression
      }
    } : {},
    var.schedule_training ? {
      train = {
        arn        = var.train_function_arn
        expression = var.train_schedule_expression
      }
    } : {},
  )
}

resource "aws_scheduler_schedule_group" "this" {
  name = var.name
  tags = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name                 = "${var.name}-scheduler"
  description          = "Lets EventBridge Scheduler invoke the ${var.name} scheduled functions"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "InvokeScheduledFunctions"
    actions   = ["lambda:InvokeFunction"]
    resources = sort([for t in local.targets : t.arn])
  }

  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "StackKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${var.name}-invoke-scheduled-functions"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

# Invocations the scheduler could not deliver (the function's own failures go to the
# function's dead-letter queue instead).
resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-scheduler-dlq"
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

resource "aws_scheduler_schedule" "this" {
  for_each = local.targets

  name                         = "${var.name}-${each.key}"
  group_name                   = aws_scheduler_schedule_group.this.name
  description                  = "Runs ${each.key} on ${each.value.expression}"
  schedule_expression          = each.value.expression
  schedule_expression_timezone = var.timezone
  state                        = var.enabled ? "ENABLED" : "DISABLED"
  kms_key_arn                  = var.kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = each.value.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ source = "knowedge.schedule", job = each.key })

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }

    dead_letter_config {
      arn = aws_sqs_queue.dlq.arn
    }
  }

  depends_on = [aws_iam_role_policy.scheduler]
}
