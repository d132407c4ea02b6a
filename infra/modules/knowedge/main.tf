# The whole knowedge stack: storage, secrets, the three Lambda functions, the ingestion API,
# schedules, GPU training (optional), alarms, Athena tables and the Cloudflare edge.
#
# The three `lambda_function` blocks below are the contract between the infrastructure and the
# code: a test in the workspace parses them and checks that each packaged binary has a function,
# that every setting the binary reads is in its `environment` or `secret_environment`, and that
# its `object_access` covers the prefixes and actions its code uses. Keep the keys literal.

locals {
  lake_url   = "s3://${module.storage.lake_bucket_name}"
  models_url = "s3://${module.storage.models_bucket_name}"

  buckets = {
    lake   = module.storage.lake_bucket_arn
    models = module.storage.models_bucket_arn
  }
}

module "storage" {
  source = "../storage"

  name                       = var.name
  lake_bucket_name           = var.lake_bucket_name
  models_bucket_name         = var.models_bucket_name
  event_retention_days       = var.event_retention_days
  dead_letter_retention_days = var.dead_letter_retention_days
  noncurrent_version_days    = var.noncurrent_version_days
  tags                       = var.tags
}

module "secrets" {
  source = "../secrets"

  name        = var.name
  kms_key_arn = module.storage.kms_key_arn
  tags        = var.tags
}

# ---------------------------------------------------------------------------------------------
# Functions.
# ---------------------------------------------------------------------------------------------

module "ingest" {
  source = "../lambda_function"

  name         = "${var.name}-ingest"
  binary       = "knowedge-ingest"
  description  = "knowedge event ingestion (POST /v1/events, erasure admin routes)"
  source_root  = var.source_root
  architecture = var.architecture

  memory_size          = var.ingest_memory_size
  timeout              = 29
  reserved_concurrency = var.ingest_reserved_concurrency

  environment = {
    KNOWEDGE_LAKE               = local.lake_url
    KNOWEDGE_CORS_ORIGINS       = join(",", var.cors_origins)
    KNOWEDGE_MAX_EVENT_AGE_DAYS = tostring(var.max_event_age_days)
  }

  secret_environment = {
    KNOWEDGE_PSEUDONYM_KEY = module.secrets.pseudonym_key_arn
    KNOWEDGE_API_KEYS      = module.secrets.api_keys_arn
  }

  buckets = local.buckets
  object_access = [
    { bucket = "lake", prefix = "events/", actions = ["s3:PutObject"] },
    { bucket = "lake", prefix = "exposures/", actions = ["s3:PutObject"] },
    { bucket = "lake", prefix = "dead-letter/", actions = ["s3:PutObject"] },
    { bucket = "lake", prefix = "audit/", actions = ["s3:GetObject", "s3:PutObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "privacy/", actions = ["s3:GetObject", "s3:PutObject", "s3:ListBucket"] },
  ]

  kms_key_arn                 = module.storage.kms_key_arn
  secrets_extension_layer_arn = var.secrets_extension_layer_arn
  log_retention_days          = var.log_retention_days
  permissions_boundary_arn    = var.permissions_boundary_arn
  tags                        = var.tags
}

module "compact" {
  source = "../lambda_function"

  name         = "${var.name}-compact"
  binary       = "knowedge-compact"
  description  = "knowedge compaction, retention and erasure jobs (hourly)"
  source_root  = var.source_root
  architecture = var.architecture

  memory_size = var.compact_memory_size
  timeout     = 900
  # Concurrent compactions of the same lake are not supported: exactly one at a time.
  reserved_concurrency = 1

  environment = {
    KNOWEDGE_LAKE                       = local.lake_url
    KNOWEDGE_MODELS                     = local.models_url
    KNOWEDGE_RETENTION_DAYS             = tostring(var.event_retention_days)
    KNOWEDGE_DEAD_LETTER_RETENTION_DAYS = tostring(var.dead_letter_retention_days)
    KNOWEDGE_CLOUDFLARE_API_URL         = var.cloudflare_api_url
    KNOWEDGE_CLOUDFLARE_ACCOUNT_ID      = var.cloudflare_account_id
    KNOWEDGE_CLOUDFLARE_KV_NAMESPACE    = module.cloudflare_edge.kv_namespace_id
    KNOWEDGE_SPIN_URL                   = var.spin_url
  }

  secret_environment = {
    KNOWEDGE_SIGNING_KEY          = module.secrets.signing_key_arn
    KNOWEDGE_PSEUDONYM_KEY        = module.secrets.pseudonym_key_arn
    KNOWEDGE_CLOUDFLARE_API_TOKEN = module.secrets.cloudflare_api_token_arn
    KNOWEDGE_SPIN_PUBLISH_KEY     = module.secrets.spin_publish_key_arn
  }

  buckets = local.buckets
  object_access = [
    { bucket = "lake", prefix = "events/", actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "dead-letter/", actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "review-sentiment/", actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "exposures/", actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "privacy/", actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "audit/", actions = ["s3:GetObject", "s3:PutObject", "s3:ListBucket"] },
    { bucket = "models", prefix = "", actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"] },
  ]

  kms_key_arn                 = module.storage.kms_key_arn
  secrets_extension_layer_arn = var.secrets_extension_layer_arn
  log_retention_days          = var.log_retention_days
  permissions_boundary_arn    = var.permissions_boundary_arn
  tags                        = var.tags
}

module "train" {
  source = "../lambda_function"

  name         = "${var.name}-train"
  binary       = "knowedge-train"
  description  = "knowedge CPU training, evaluation, promotion and edge publishing (daily)"
  source_root  = var.source_root
  architecture = var.architecture

  memory_size          = var.train_memory_size
  timeout              = 900
  reserved_concurrency = 1

  environment = {
    KNOWEDGE_LAKE                    = local.lake_url
    KNOWEDGE_MODELS                  = local.models_url
    KNOWEDGE_RECIPE                  = var.recipe
    KNOWEDGE_CLOUDFLARE_API_URL      = var.cloudflare_api_url
    KNOWEDGE_CLOUDFLARE_ACCOUNT_ID   = var.cloudflare_account_id
    KNOWEDGE_CLOUDFLARE_KV_NAMESPACE = module.cloudflare_edge.kv_namespace_id
    KNOWEDGE_SPIN_URL                = var.spin_url
  }

  secret_environment = {
    KNOWEDGE_SIGNING_KEY          = module.secrets.signing_key_arn
    KNOWEDGE_CLOUDFLARE_API_TOKEN = module.secrets.cloudflare_api_token_arn
    KNOWEDGE_SPIN_PUBLISH_KEY     = module.secrets.spin_publish_key_arn
  }

  buckets = local.buckets
  object_access = [
    { bucket = "lake", prefix = "events/", actions = ["s3:GetObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "review-sentiment/", actions = ["s3:GetObject", "s3:PutObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "catalogue/", actions = ["s3:GetObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "audit/", actions = ["s3:GetObject", "s3:PutObject", "s3:ListBucket"] },
    { bucket = "models", prefix = "", actions = ["s3:GetObject", "s3:PutObject", "s3:ListBucket"] },
  ]

  kms_key_arn                 = module.storage.kms_key_arn
  secrets_extension_layer_arn = var.secrets_extension_layer_arn
  log_retention_days          = var.log_retention_days
  permissions_boundary_arn    = var.permissions_boundary_arn
  tags                        = var.tags
}

module "report" {
  source = "../lambda_function"

  name         = "${var.name}-report"
  binary       = "knowedge-report"
  description  = "knowedge business dashboard written to the lake's reports/ (daily)"
  source_root  = var.source_root
  architecture = var.architecture

  memory_size = var.report_memory_size
  timeout     = 900
  # Its copy of the lake's tables lives in /tmp between runs.
  ephemeral_storage_mb = var.report_ephemeral_storage_mb
  reserved_concurrency = 1

  environment = {
    KNOWEDGE_LAKE            = local.lake_url
    KNOWEDGE_REPORT_WORK_DIR = "/tmp/knowedge-lake"
    # `cargo xtask package` puts ECharts beside `bootstrap` in the function's zip.
    KNOWEDGE_ECHARTS = "/var/task/echarts.min.js"
  }

  buckets = local.buckets
  object_access = [
    { bucket = "lake", prefix = "events/", actions = ["s3:GetObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "exposures/", actions = ["s3:GetObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "review-sentiment/", actions = ["s3:GetObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "dead-letter/", actions = ["s3:GetObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "audit/", actions = ["s3:GetObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "catalogue/", actions = ["s3:GetObject", "s3:ListBucket"] },
    { bucket = "lake", prefix = "reports/", actions = ["s3:PutObject"] },
  ]

  kms_key_arn                 = module.storage.kms_key_arn
  secrets_extension_layer_arn = var.secrets_extension_layer_arn
  log_retention_days          = var.log_retention_days
  permissions_boundary_arn    = var.permissions_boundary_arn
  tags                        = var.tags
}

# ---------------------------------------------------------------------------------------------
# Triggers.
# ---------------------------------------------------------------------------------------------

module "ingest_api" {
  source = "../ingest_api"

  name                   = "${var.name}-ingest"
  function_name          = module.ingest.function_name
  function_invoke_arn    = module.ingest.invoke_arn
  throttling_rate_limit  = var.ingest_throttling_rate_limit
  throttling_burst_limit = var.ingest_throttling_burst_limit
  cors_origins           = var.cors_origins
  domain_name            = var.ingest_domain_name
  certificate_arn        = var.ingest_certificate_arn
  kms_key_arn            = module.storage.kms_key_arn
  log_retention_days     = var.log_retention_days
  tags                   = var.tags
}

module "schedules" {
  source = "../schedules"

  name                        = var.name
  compact_function_arn        = module.compact.function_arn
  compact_schedule_expression = var.compact_schedule_expression
  # CPU training is scheduled only when training runs on Lambda.
  schedule_training          = var.training_mode == "lambda"
  train_function_arn         = module.train.function_arn
  train_schedule_expression  = var.train_schedule_expression
  report_function_arn        = module.report.function_arn
  report_schedule_expression = var.report_schedule_expression
  kms_key_arn                = module.storage.kms_key_arn
  permissions_boundary_arn   = var.permissions_boundary_arn
  tags                       = var.tags
}

# GPU training on AWS Batch: the same settings and object access as the training function.
module "gpu_training" {
  source = "../gpu_training"
  count  = var.training_mode == "gpu_batch" ? 1 : 0

  name                     = "${var.name}-train-gpu"
  image_tag                = var.gpu_image_tag
  vpc_id                   = var.gpu_vpc_id
  subnet_ids               = var.gpu_subnet_ids
  instance_types           = var.gpu_instance_types
  use_spot                 = var.gpu_use_spot
  max_vcpus                = var.gpu_max_vcpus
  environment              = module.train.environment
  secret_environment       = module.train.secret_environment
  buckets                  = local.buckets
  object_access            = module.train.object_access
  schedule_expression      = var.train_schedule_expression
  schedule_group_name      = module.schedules.schedule_group_name
  kms_key_arn              = module.storage.kms_key_arn
  log_retention_days       = var.log_retention_days
  permissions_boundary_arn = var.permissions_boundary_arn
  tags                     = var.tags
}

# ---------------------------------------------------------------------------------------------
# Operations and analytics.
# ---------------------------------------------------------------------------------------------

module "alarms" {
  source = "../alarms"

  name         = var.name
  kms_key_arn  = module.storage.kms_key_arn
  alarm_emails = var.alarm_emails
  api_id       = module.ingest_api.api_id

  functions = {
    ingest  = { function_name = module.ingest.function_name, metric_function = "knowedge-ingest" }
    compact = { function_name = module.compact.function_name, metric_function = "knowedge-compact" }
    train   = { function_name = module.train.function_name, metric_function = "knowedge-train" }
    report  = { function_name = module.report.function_name, metric_function = "knowedge-report" }
  }

  dead_letter_queues = {
    ingest    = module.ingest.dead_letter_queue_name
    compact   = module.compact.dead_letter_queue_name
    train     = module.train.dead_letter_queue_name
    report    = module.report.dead_letter_queue_name
    scheduler = module.schedules.dead_letter_queue_name
  }

  training_mode       = var.training_mode
  batch_job_queue_arn = var.training_mode == "gpu_batch" ? module.gpu_training[0].job_queue_arn : null
  no_model_days       = var.no_model_days
  tags                = var.tags
}

module "athena" {
  source = "../athena"

  name                  = var.name
  lake_bucket_name      = module.storage.lake_bucket_name
  log_bucket_name       = module.storage.log_bucket_name
  projection_start_date = var.athena_projection_start_date
  kms_key_arn           = module.storage.kms_key_arn
  tags                  = var.tags
}

# ---------------------------------------------------------------------------------------------
# Edge.
# ---------------------------------------------------------------------------------------------

module "cloudflare_edge" {
  source = "../cloudflare_edge"

  account_id      = var.cloudflare_account_id
  zone_id         = var.cloudflare_zone_id
  source_root     = var.source_root
  route_pattern   = var.edge_route_pattern
  custom_domain   = var.edge_custom_domain
  token_audience  = var.edge_token_audience
  cors_origins    = var.cors_origins
  experiment      = var.edge_experiment
  ingest_url      = module.ingest_api.ingest_url
  secret_values   = var.edge_secret_values
  inherit_secrets = var.edge_inherit_secrets
}
