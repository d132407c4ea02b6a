variable "aws_region" {
  description = "AWS region of the stack."
  type        = string
}

variable "name" {
  description = "Name prefix of every resource."
  type        = string
  default     = "knowedge"
}

variable "source_root" {
  description = "Repository root, relative to this directory."
  type        = string
  default     = "../../.."
}

variable "architecture" {
  description = "Lambda architecture the packages were built for (arm64 or x86_64)."
  type        = string
  default     = "arm64"
}

variable "secrets_extension_layer_arn" {
  description = "AWS Parameters and Secrets Lambda extension layer ARN for aws_region and architecture."
  type        = string
}

variable "cors_origins" {
  description = "Browser origins allowed to call ingestion and the edge."
  type        = list(string)
  default     = []
}

variable "max_event_age_days" {
  description = "Oldest event ingestion accepts, in days."
  type        = number
  default     = 30
}

variable "event_retention_days" {
  description = "Days events are kept (0: forever)."
  type        = number
  default     = 365
}

variable "dead_letter_retention_days" {
  description = "Days dead-letter records are kept (0: forever)."
  type        = number
  default     = 30
}

variable "ingest_throttling_rate_limit" {
  description = "Requests per second the ingestion API accepts."
  type        = number
  default     = 500
}

variable "ingest_throttling_burst_limit" {
  description = "Burst of requests the ingestion API accepts."
  type        = number
  default     = 1000
}

variable "ingest_reserved_concurrency" {
  description = "Reserved concurrency of the ingest function."
  type        = number
  default     = 20
}

variable "ingest_domain_name" {
  description = "Optional custom domain of the ingestion API."
  type        = string
  default     = null
}

variable "ingest_certificate_arn" {
  description = "Regional ACM certificate of ingest_domain_name."
  type        = string
  default     = null
}

variable "report_schedule_expression" {
  description = "When the business dashboard is rebuilt (after compaction)."
  type        = string
  default     = "cron(30 4 * * ? *)"
}

variable "compact_schedule_expression" {
  description = "When compaction runs."
  type        = string
  default     = "rate(1 hour)"
}

variable "train_schedule_expression" {
  description = "When training runs."
  type        = string
  default     = "cron(0 3 * * ? *)"
}

variable "training_mode" {
  description = "\"lambda\" (CPU) or \"gpu_batch\" (AWS Batch GPU instances)."
  type        = string
  default     = "lambda"
}

variable "recipe" {
  description = "Training recipe."
  type        = string
  default     = "mf"
}

variable "gpu_image_tag" {
  description = "Tag of the GPU training image in ECR."
  type        = string
  default     = "1"
}

variable "gpu_vpc_id" {
  description = "VPC of the GPU training instances."
  type        = string
  default     = null
}

variable "gpu_subnet_ids" {
  description = "Subnets of the GPU training instances."
  type        = list(string)
  default     = []
}

variable "gpu_use_spot" {
  description = "Run GPU training on Spot instances."
  type        = bool
  default     = true
}

variable "cloudflare_account_id" {
  description = "Cloudflare account ID."
  type        = string
}

variable "cloudflare_zone_id" {
  description = "Cloudflare zone of the edge route or custom domain."
  type        = string
  default     = null
}

variable "spin_url" {
  description = "Base URL of a Spin app that also receives models (empty: none)."
  type        = string
  default     = ""
}

variable "edge_route_pattern" {
  description = "Route of the Worker, e.g. \"edge.example.com/*\"."
  type        = string
  default     = null
}

variable "edge_custom_domain" {
  description = "Custom domain of the Worker (instead of a route)."
  type        = string
  default     = null
}

variable "edge_secret_values" {
  description = "Worker secrets to upload (first deployment or rotation; pass with TF_VAR_edge_secret_values, never in a file)."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "edge_inherit_secrets" {
  description = "false for a first deployment before the Worker's secrets exist (they are then left unbound); true afterwards."
  type        = bool
  default     = true
}

variable "alarm_emails" {
  description = "E-mail addresses that receive alarms."
  type        = list(string)
  default     = []
}

variable "no_model_days" {
  description = "Days without a promoted model that raise an alarm."
  type        = number
  default     = 3
}

variable "log_retention_days" {
  description = "Days logs are kept."
  type        = number
  default     = 365
}
