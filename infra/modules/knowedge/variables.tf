# ---- General ----------------------------------------------------------------------------------

variable "name" {
  description = "Name prefix of every resource (functions are <name>-ingest, <name>-compact, <name>-train)."
  type        = string
  default     = "knowedge"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2 to 31 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "source_root" {
  description = "Repository root: Lambda packages are read from <source_root>/target/lambda/<binary>/bootstrap.zip, the Worker bundle from <source_root>/edge/worker/build."
  type        = string
  default     = "../../.."
}

variable "architecture" {
  description = "Instruction set the Lambda packages were built for: arm64 (default) or x86_64 (`cargo xtask package` flag)."
  type        = string
  default     = "arm64"
}

variable "secrets_extension_layer_arn" {
  description = "ARN of the AWS Parameters and Secrets Lambda extension layer for the region and architecture (AWS publishes the list per region, e.g. arn:aws:lambda:<region>:<aws account>:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:<version>)."
  type        = string
}

variable "log_retention_days" {
  description = "Days the logs of the functions, the API and the training jobs are kept."
  type        = number
  default     = 365
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary of every IAM role the stack creates."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every AWS resource (provider default_tags work as well)."
  type        = map(string)
  default     = {}
}

# ---- Lake -------------------------------------------------------------------------------------

variable "lake_bucket_name" {
  description = "Name of the lake bucket (null derives one from name, account and region)."
  type        = string
  default     = null
}

variable "models_bucket_name" {
  description = "Name of the models bucket (null derives one from name, account and region)."
  type        = string
  default     = null
}

variable "event_retention_days" {
  description = "Days events are kept: compaction drops older ones (KNOWEDGE_RETENTION_DAYS) and a lifecycle rule backs it up. 0 keeps events forever."
  type        = number
  default     = 365
}

variable "dead_letter_retention_days" {
  description = "Days dead-letter records are kept (KNOWEDGE_DEAD_LETTER_RETENTION_DAYS). 0 keeps them forever."
  type        = number
  default     = 30
}

variable "noncurrent_version_days" {
  description = "Days replaced or deleted object versions are kept (per-batch files after compaction, files rewritten by an erasure)."
  type        = number
  default     = 30
}

# ---- Ingestion --------------------------------------------------------------------------------

variable "cors_origins" {
  description = "Browser origins allowed to call ingestion and the edge (KNOWEDGE_CORS_ORIGINS of both)."
  type        = list(string)
  default     = []
}

variable "max_event_age_days" {
  description = "Oldest event timestamp ingestion accepts, in days (KNOWEDGE_MAX_EVENT_AGE_DAYS)."
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
  description = "Reserved concurrency of the ingest function. Lambda keeps 100 executions of the account unreserved, so the account's concurrency quota must exceed the sum reserved by the stack (this + 2) by 100."
  type        = number
  default     = 20
}

variable "ingest_memory_size" {
  description = "Memory of the ingest function in MB."
  type        = number
  default     = 512
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

# ---- Compaction and training -------------------------------------------------------------------

variable "compact_schedule_expression" {
  description = "When compaction runs."
  type        = string
  default     = "rate(1 hour)"
}

variable "compact_memory_size" {
  description = "Memory of the compaction function in MB."
  type        = number
  default     = 2048
}

variable "report_schedule_expression" {
  description = "When the business dashboard is rebuilt (after compaction, so it copies compacted files)."
  type        = string
  default     = "cron(30 4 * * ? *)"
}

variable "report_memory_size" {
  description = "Memory of the report function in MB (its SQL engine works in memory)."
  type        = number
  default     = 3008
}

variable "report_ephemeral_storage_mb" {
  description = "Size of the report function's /tmp in MB: it holds a copy of the lake's tables, so it must exceed their size (at most 10240)."
  type        = number
  default     = 4096
}

variable "training_mode" {
  description = "Where scheduled training runs: \"lambda\" (CPU, the training function) or \"gpu_batch\" (the CUDA container on AWS Batch GPU instances)."
  type        = string
  default     = "lambda"

  validation {
    condition     = contains(["lambda", "gpu_batch"], var.training_mode)
    error_message = "training_mode must be \"lambda\" or \"gpu_batch\"."
  }
}

variable "train_schedule_expression" {
  description = "When training runs (on Lambda or as a Batch job)."
  type        = string
  default     = "cron(0 3 * * ? *)"
}

variable "train_memory_size" {
  description = "Memory of the training function in MB (CPU scales with it; up to 10240 where the account's Lambda memory quota allows, new accounts start at 3008)."
  type        = number
  default     = 3008
}

variable "recipe" {
  description = "Training recipe (KNOWEDGE_RECIPE), e.g. \"mf\"."
  type        = string
  default     = "mf"
}

variable "gpu_image_tag" {
  description = "Tag of the GPU training image pushed to the stack's ECR repository (training_mode = \"gpu_batch\")."
  type        = string
  default     = "1"
}

variable "gpu_vpc_id" {
  description = "VPC of the GPU training instances (training_mode = \"gpu_batch\")."
  type        = string
  default     = null
}

variable "gpu_subnet_ids" {
  description = "Subnets of the GPU training instances (training_mode = \"gpu_batch\")."
  type        = list(string)
  default     = []
}

variable "gpu_instance_types" {
  description = "GPU instance types AWS Batch may start."
  type        = list(string)
  default     = ["g6.xlarge", "g5.xlarge", "g6.2xlarge", "g5.2xlarge"]
}

variable "gpu_use_spot" {
  description = "Run GPU training on Spot instances."
  type        = bool
  default     = true
}

variable "gpu_max_vcpus" {
  description = "Most vCPUs of GPU instances running at once."
  type        = number
  default     = 16
}

# ---- Edge -------------------------------------------------------------------------------------

variable "cloudflare_account_id" {
  description = "Cloudflare account of the Worker and its KV namespace (KNOWEDGE_CLOUDFLARE_ACCOUNT_ID)."
  type        = string
}

variable "cloudflare_zone_id" {
  description = "Cloudflare zone of the edge route or custom domain."
  type        = string
  default     = null
}

variable "cloudflare_api_url" {
  description = "Base URL of the Cloudflare API the functions publish models through (KNOWEDGE_CLOUDFLARE_API_URL)."
  type        = string
  default     = "https://api.cloudflare.com/client/v4"
}

variable "spin_url" {
  description = "Base URL of a deployed Spin app that also receives models (KNOWEDGE_SPIN_URL); empty: none."
  type        = string
  default     = ""
}

variable "edge_route_pattern" {
  description = "Route of the Worker on the zone, e.g. \"edge.example.com/*\"."
  type        = string
  default     = null
}

variable "edge_custom_domain" {
  description = "Custom domain of the Worker, e.g. \"edge.example.com\" (instead of a route)."
  type        = string
  default     = null
}

variable "edge_token_audience" {
  description = "KNOWEDGE_TOKEN_AUDIENCE of the Worker (null: its default)."
  type        = string
  default     = null
}

variable "edge_experiment" {
  description = "KNOWEDGE_EXPERIMENT of the Worker: an A/B experiment as JSON (null: none)."
  type        = string
  default     = null
}

variable "edge_secret_values" {
  description = "Worker secrets to upload (first deployment or rotation only; they are then kept in the state). Omitted secrets are inherited from the Worker's previous version."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "edge_inherit_secrets" {
  description = "Worker secrets not given in edge_secret_values are inherited from the previous version; set false for a first deployment before the secrets are put with wrangler."
  type        = bool
  default     = true
}

# ---- Alarms and analytics -----------------------------------------------------------------------

variable "alarm_emails" {
  description = "E-mail addresses that receive the alarms."
  type        = list(string)
  default     = []
}

variable "no_model_days" {
  description = "Days without a promoted model that raise an alarm (1 to 7)."
  type        = number
  default     = 3
}

variable "athena_projection_start_date" {
  description = "Earliest dt partition Athena considers (yyyy-MM-dd)."
  type        = string
  default     = "2024-01-01"
}
