# Names, ARNs and URLs only: no secret value is ever an output.

output "ingest_url" {
  description = "URL clients post events to."
  value       = module.ingest_api.ingest_url
}

output "ingest_api_endpoint" {
  description = "Base URL of the ingestion API."
  value       = module.ingest_api.api_endpoint
}

output "ingest_domain_target" {
  description = "DNS target of the ingestion custom domain (null without one)."
  value       = module.ingest_api.domain_target
}

output "edge_url" {
  description = "Public base URL of the edge scorer."
  value       = module.cloudflare_edge.url
}

output "lake_bucket" {
  description = "Lake bucket."
  value       = module.storage.lake_bucket_name
}

output "models_bucket" {
  description = "Models bucket."
  value       = module.storage.models_bucket_name
}

output "kms_key_arn" {
  description = "The stack's KMS key."
  value       = module.storage.kms_key_arn
}

output "function_names" {
  description = "Lambda functions by role."
  value = {
    ingest  = module.ingest.function_name
    compact = module.compact.function_name
    train   = module.train.function_name
    report  = module.report.function_name
  }
}

output "dashboard_location" {
  description = "Where the report function writes the business dashboard (a self-contained page and its data)."
  value       = "${local.lake_url}/reports/index.html"
}

output "secret_arns" {
  description = "Secrets Manager secrets to fill with `aws secretsmanager put-secret-value` (ARNs only)."
  value       = module.secrets.all_arns
}

output "kv_namespace_id" {
  description = "Workers KV namespace of the models."
  value       = module.cloudflare_edge.kv_namespace_id
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.alarms.topic_arn
}

output "athena_workgroup" {
  description = "Athena workgroup for queries of the lake."
  value       = module.athena.workgroup_name
}

output "athena_database" {
  description = "Glue database of the lake tables."
  value       = module.athena.database_name
}

output "gpu_repository_url" {
  description = "ECR repository of the GPU training image (null unless training_mode = \"gpu_batch\")."
  value       = var.training_mode == "gpu_batch" ? module.gpu_training[0].repository_url : null
}

output "gpu_job_queue" {
  description = "AWS Batch job queue of GPU training (null unless training_mode = \"gpu_batch\")."
  value       = var.training_mode == "gpu_batch" ? module.gpu_training[0].job_queue_name : null
}

output "gpu_job_definition" {
  description = "AWS Batch job definition of GPU training (null unless training_mode = \"gpu_batch\")."
  value       = var.training_mode == "gpu_batch" ? module.gpu_training[0].job_definition_name : null
}

output "training_mode" {
  description = "Where scheduled training runs (lambda or gpu_batch)."
  value       = var.training_mode
}
