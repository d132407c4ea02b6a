# Production deployment of knowedge on AWS and Cloudflare.
#
# Before `terraform apply`, from the repository root:
#   cargo xtask package              # target/lambda/knowedge-{ingest,compact,train,report}/bootstrap.zip
#   (cd edge/worker && worker-build --release)   # edge/worker/build
# After the first apply, put the secret values (see docs/DEPLOY.md):
#   aws secretsmanager put-secret-value --secret-id <arn from the secret_arns output> --secret-string ...

module "knowedge" {
  source = "../../modules/knowedge"

  name                        = var.name
  source_root                 = var.source_root
  architecture                = var.architecture
  secrets_extension_layer_arn = var.secrets_extension_layer_arn

  cors_origins                  = var.cors_origins
  max_event_age_days            = var.max_event_age_days
  event_retention_days          = var.event_retention_days
  dead_letter_retention_days    = var.dead_letter_retention_days
  ingest_throttling_rate_limit  = var.ingest_throttling_rate_limit
  ingest_throttling_burst_limit = var.ingest_throttling_burst_limit
  ingest_reserved_concurrency   = var.ingest_reserved_concurrency
  ingest_domain_name            = var.ingest_domain_name
  ingest_certificate_arn        = var.ingest_certificate_arn

  compact_schedule_expression = var.compact_schedule_expression
  train_schedule_expression   = var.train_schedule_expression
  report_schedule_expression  = var.report_schedule_expression
  training_mode               = var.training_mode
  recipe                      = var.recipe
  gpu_image_tag               = var.gpu_image_tag
  gpu_vpc_id                  = var.gpu_vpc_id
  gpu_subnet_ids              = var.gpu_subnet_ids
  gpu_use_spot                = var.gpu_use_spot

  cloudflare_account_id = var.cloudflare_account_id
  cloudflare_zone_id    = var.cloudflare_zone_id
  spin_url              = var.spin_url
  edge_route_pattern    = var.edge_route_pattern
  edge_custom_domain    = var.edge_custom_domain
  edge_secret_values    = var.edge_secret_values
  edge_inherit_secrets  = var.edge_inherit_secrets

  alarm_emails       = var.alarm_emails
  no_model_days      = var.no_model_days
  log_retention_days = var.log_retention_days
}
