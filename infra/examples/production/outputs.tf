# No secret value is an output; secrets are listed by ARN for `aws secretsmanager put-secret-value`.

output "ingest_url" {
  description = "URL clients post events to."
  value       = module.knowedge.ingest_url
}

output "edge_url" {
  description = "Public base URL of the edge scorer."
  value       = module.knowedge.edge_url
}

output "lake_bucket" {
  description = "Lake bucket."
  value       = module.knowedge.lake_bucket
}

output "models_bucket" {
  description = "Models bucket."
  value       = module.knowedge.models_bucket
}

output "function_names" {
  description = "Lambda functions by role."
  value       = module.knowedge.function_names
}

output "secret_arns" {
  description = "Secrets to fill in after the first apply."
  value       = module.knowedge.secret_arns
}

output "kv_namespace_id" {
  description = "Workers KV namespace of the models."
  value       = module.knowedge.kv_namespace_id
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.knowedge.alarm_topic_arn
}

output "athena_workgroup" {
  description = "Athena workgroup for lake queries."
  value       = module.knowedge.athena_workgroup
}

output "gpu_repository_url" {
  description = "ECR repository of the GPU training image (gpu_batch only)."
  value       = module.knowedge.gpu_repository_url
}

output "training_mode" {
  description = "Where scheduled training runs (lambda or gpu_batch)."
  value       = module.knowedge.training_mode
}

output "gpu_job_queue" {
  description = "AWS Batch job queue of GPU training (gpu_batch only)."
  value       = module.knowedge.gpu_job_queue
}

output "gpu_job_definition" {
  description = "AWS Batch job definition of GPU training (gpu_batch only)."
  value       = module.knowedge.gpu_job_definition
}

output "dashboard_location" {
  description = "Where the business dashboard is written daily (open it with a presigned URL or sync it)."
  value       = module.knowedge.dashboard_location
}
