variable "name" {
  description = "Function name, e.g. \"knowedge-ingest\". Also names the role, log group and dead-letter queue."
  type        = string
}

variable "binary" {
  description = "Name of the workspace binary packaged for this function (knowedge-ingest, knowedge-compact, knowedge-train)."
  type        = string
}

variable "description" {
  description = "Description of the function."
  type        = string
  default     = ""
}

variable "source_root" {
  description = "Repository root; the package is <source_root>/target/lambda/<binary>/bootstrap.zip, as `cargo xtask package` writes it."
  type        = string
  default     = "../../.."
}

variable "package_path" {
  description = "Path of the package zip; null uses the `cargo xtask package` layout under source_root."
  type        = string
  default     = null
}

variable "package_hash" {
  description = "Base64 SHA-256 of the package; null hashes package_path (the file must then exist at plan time)."
  type        = string
  default     = null
}

variable "architecture" {
  description = "Instruction set of the package: arm64 (default, Graviton) or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB (CPU scales with it)."
  type        = number
  default     = 256
}

variable "timeout" {
  description = "Timeout of one invocation in seconds."
  type        = number
  default     = 30
}

variable "ephemeral_storage_mb" {
  description = "Size of /tmp in MB (512 to 10240)."
  type        = number
  default     = 512

  validation {
    condition     = var.ephemeral_storage_mb >= 512 && var.ephemeral_storage_mb <= 10240
    error_message = "ephemeral_storage_mb must be between 512 and 10240."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; caps the function and keeps that much capacity for it."
  type        = number
  default     = 10

  validation {
    condition     = var.reserved_concurrency >= 1
    error_message = "reserved_concurrency must be at least 1 (0 would disable the function)."
  }
}

variable "environment" {
  description = "Plain settings: environment variable NAME = value. Never put secret values here."
  type        = map(string)
  default     = {}
}

variable "secret_environment" {
  description = "Secret settings: NAME = Secrets Manager secret ARN. The function gets <NAME>_SECRET = ARN and may read exactly these secrets."
  type        = map(string)
  default     = {}
}

variable "buckets" {
  description = "Buckets object_access may name: key (\"lake\", \"models\") = bucket ARN."
  type        = map(string)
  default     = {}
}

variable "object_access" {
  description = "Object storage grants: bucket key, key prefix (\"\" = whole bucket) and S3 actions (s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucket)."
  type = list(object({
    bucket  = string
    prefix  = string
    actions = list(string)
  }))
  default = []

  validation {
    condition = alltrue(flatten([
      for a in var.object_access : [
        for x in a.actions : contains(["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"], x)
      ]
    ]))
    error_message = "object_access actions must be among s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucket, s3:AbortMultipartUpload, s3:ListMultipartUploadParts."
  }
}

variable "kms_key_arn" {
  description = "ARN of the stack's KMS key (logs, dead-letter queue, environment variables, S3 objects, secrets)."
  type        = string
}

variable "secrets_extension_layer_arn" {
  description = "ARN of the AWS Parameters and Secrets Lambda extension layer for the region and architecture (see the AWS documentation's list of ARNs). Required when secret_environment is not empty."
  type        = string
  default     = null
}

variable "secrets_cache_ttl_seconds" {
  description = "How long the extension caches a secret value (SECRETS_MANAGER_TTL)."
  type        = number
  default     = 300
}

variable "extra_layers" {
  description = "Further layer ARNs."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Days the function's logs are kept."
  type        = number
  default     = 365
}

variable "tracing_mode" {
  description = "X-Ray tracing mode: Active or PassThrough."
  type        = string
  default     = "Active"

  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be Active or PassThrough."
  }
}

variable "async_retry_attempts" {
  description = "Retries of a failed asynchronous invocation (0 to 2) before it goes to the dead-letter queue."
  type        = number
  default     = 2
}

variable "async_max_event_age_seconds" {
  description = "Age after which an asynchronous invocation is not retried any more (60 to 21600)."
  type        = number
  default     = 3600
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary of the role."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
