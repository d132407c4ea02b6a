# GPU training on dedicated instances: the `knowedge-train` binary built with candle's CUDA
# backend (functions/train/Dockerfile) in an ECR image, run by AWS Batch on g5/g6 instances
# (On-Demand or Spot) on an EventBridge Scheduler schedule. The container runs one training run
# (`--once`) and exits; a non-zero exit is a failed Batch job, which the alarms module reports.
#
# The job gets the same settings as the training Lambda function. Plain settings are container
# environment variables; secret settings are injected by Batch from Secrets Manager (the job
# definition's `secrets`, valueFrom = secret ARN), so inside the container the variable NAME holds
# the secret value itself (the Lambda function instead gets NAME_SECRET = ARN and asks the
# Parameters and Secrets extension).

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region
  partition  = data.aws_partition.current.partition
  image      = "${aws_ecr_repository.this.repository_url}:${var.image_tag}"

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
      whole    = a.prefix == ""
    } if contains(a.actions, "s3:ListBucket")
  ]
}

# ---------------------------------------------------------------------------------------------
# Image repository.
# ---------------------------------------------------------------------------------------------

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Keep the newest images only"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.images_to_keep
        }
        action = { type = "expire" }
      },
    ]
  })
}

# ---------------------------------------------------------------------------------------------
# Compute: GPU instances in the given subnets, no inbound traffic, HTTPS out only.
# ---------------------------------------------------------------------------------------------

resource "aws_security_group" "this" {
  name        = "${var.name}-batch"
  description = "knowedge GPU training instances: no inbound traffic, HTTPS out to S3, ECR, Secrets Manager and the edge APIs"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.this.id
  description       = "HTTPS to AWS APIs, the Cloudflare API and the Spin app"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

# Role of the container instances (the ECS agent): register with ECS, pull images, write logs.
resource "aws_iam_role" "instance" {
  name                 = "${var.name}-instance"
  description          = "Container instances of the ${var.name} Batch compute environment"
  assume_role_policy   = data.aws_iam_policy_document.ec2_assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "instance" {
  role       = aws_iam_role.instance.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

resource "aws_iam_instance_profile" "instance" {
  name = "${var.name}-instance"
  role = aws_iam_role.instance.name
  tags = var.tags
}

# Instances require IMDSv2 tokens, and containers cannot reach instance metadata (hop limit 1):
# the job role reaches the container through the ECS credentials endpoint instead.
resource "aws_launch_template" "this" {
  name                   = "${var.name}-batch"
  description            = "knowedge GPU training instances"
  update_default_version = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${var.name}-batch" })
  }

  tags = var.tags
}

resource "aws_batch_compute_environment" "this" {
  name = var.name
  type = "MANAGED"

  compute_resources {
    type                = var.use_spot ? "SPOT" : "EC2"
    allocation_strategy = var.use_spot ? "SPOT_PRICE_CAPACITY_OPTIMIZED" : "BEST_FIT_PROGRESSIVE"
    bid_percentage      = var.use_spot ? var.spot_bid_percentage : null
    instance_type       = var.instance_types
    min_vcpus           = 0
    max_vcpus           = var.max_vcpus
    subnets             = var.subnet_ids
    security_group_ids  = [aws_security_group.this.id]
    instance_role       = aws_iam_instance_profile.instance.arn

    ec2_configuration {
      image_type = var.ec2_image_type
    }

    launch_template {
      launch_template_id = aws_launch_template.this.id
      version            = aws_launch_template.this.latest_version
    }

    tags = var.tags
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy_attachment.instance]
}

resource "aws_batch_job_queue" "this" {
  name     = var.name
  state    = "ENABLED"
  priority = 1

  compute_environment_order {
    order               = 1
    compute_environment = aws_batch_compute_environment.this.arn
  }

  tags = var.tags
}

# ---------------------------------------------------------------------------------------------
# Job: roles, logs, definition.
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# Execution role: pull the image and resolve the job's secrets before the container starts.
resource "aws_iam_role" "execution" {
  name                 = "${var.name}-execution"
  description          = "Starts ${var.name} jobs: image pull and secret injection"
  assume_role_policy   = data.aws_iam_policy_document.tasks_assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "JobSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = sort(distinct(values(var.secret_environment)))
  }

  statement {
    sid       = "StackKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "${var.name}-job-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Job role: what the training code itself may do (the same object access as the Lambda function).
resource "aws_iam_role" "job" {
  name                 = "${var.name}-job"
  description          = "Role of the ${var.name} training container"
  assume_role_policy   = data.aws_iam_policy_document.tasks_assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "job" {
  statement {
    sid       = "StackKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
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

resource "aws_iam_role_policy" "job" {
  name   = "${var.name}-least-privilege"
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.job.json
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/batch/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# CloudWatch extracts Embedded Metric Format lines only from Lambda logs (and agents that mark
# them). The training container's lines reach CloudWatch Logs through the awslogs driver, so
# metric filters turn its `ModelsPromoted` and `EdgePublishFailures` lines into the same metrics
# (namespace `knowedge`, dimension `function`) the alarms watch.
resource "aws_cloudwatch_log_metric_filter" "emf" {
  for_each = toset(["ModelsPromoted", "EdgePublishFailures"])

  name           = "${var.name}-${each.key}"
  log_group_name = aws_cloudwatch_log_group.this.name
  pattern        = "{ $.${each.key} >= 0 }"

  metric_transformation {
    name       = each.key
    namespace  = "knowedge"
    value      = "$.${each.key}"
    unit       = "Count"
    dimensions = { function = "$.function" }
  }
}

resource "aws_batch_job_definition" "this" {
  name                  = var.name
  type                  = "container"
  platform_capabilities = ["EC2"]
  propagate_tags        = true

  # A Spot interruption or a lost host is retried; a failed training run is not.
  retry_strategy {
    attempts = var.retry_attempts
    evaluate_on_exit {
      on_status_reason = "Host EC2*"
      action           = "RETRY"
    }
    evaluate_on_exit {
      on_reason = "*"
      action    = "EXIT"
    }
  }

  timeout {
    attempt_duration_seconds = var.job_timeout_seconds
  }

  container_properties = jsonencode({
    image            = local.image
    jobRoleArn       = aws_iam_role.job.arn
    executionRoleArn = aws_iam_role.execution.arn
    privileged       = false
    user             = "10001:10001"

    resourceRequirements = [
      { type = "GPU", value = tostring(var.gpus) },
      { type = "VCPU", value = tostring(var.vcpus) },
      { type = "MEMORY", value = tostring(var.memory_mib) },
    ]

    environment = [for name in sort(keys(var.environment)) : { name = name, value = var.environment[name] }]
    secrets     = [for name in sort(keys(var.secret_environment)) : { name = name, valueFrom = var.secret_environment[name] }]

    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.this.name
        "awslogs-region"        = local.region
        "awslogs-stream-prefix" = "train"
      }
    }
  })

  tags = var.tags
}

# ---------------------------------------------------------------------------------------------
# Schedule: EventBridge Scheduler calls batch:SubmitJob.
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name                 = "${var.name}-scheduler"
  description          = "Lets EventBridge Scheduler submit ${var.name} jobs"
  assume_role_policy   = data.aws_iam_policy_document.scheduler_assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid     = "SubmitTrainingJob"
    actions = ["batch:SubmitJob"]
    resources = [
      aws_batch_job_queue.this.arn,
      aws_batch_job_definition.this.arn_prefix,
      "${aws_batch_job_definition.this.arn_prefix}:*",
    ]
  }

  statement {
    sid       = "StackKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${var.name}-submit-job"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "this" {
  name                         = var.name
  group_name                   = var.schedule_group_name
  description                  = "Submits the GPU training job on ${var.schedule_expression}"
  schedule_expression          = var.schedule_expression
  schedule_expression_timezone = var.timezone
  state                        = var.schedule_enabled ? "ENABLED" : "DISABLED"
  kms_key_arn                  = var.kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = "arn:${local.partition}:scheduler:::aws-sdk:batch:submitJob"
    role_arn = aws_iam_role.scheduler.arn
    input = jsonencode({
      JobName       = var.name
      JobQueue      = aws_batch_job_queue.this.arn
      JobDefinition = aws_batch_job_definition.this.arn_prefix
    })

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }
  }

  depends_on = [aws_iam_role_policy.scheduler]
}
