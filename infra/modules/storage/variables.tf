variable "name" {
  description = "Name prefix of the stack's resources, e.g. \"knowedge\"."
  type        = string
}

variable "lake_bucket_name" {
  description = "Name of the lake bucket; null derives \"<name>-lake-<account>-<region>\"."
  type        = string
  default     = null
}

variable "models_bucket_name" {
  description = "Name of the models bucket; null derives \"<name>-models-<account>-<region>\"."
  type        = string
  default     = null
}

variable "log_bucket_name" {
  description = "Name of the access-log bucket; null derives \"<name>-access-logs-<account>-<region>\"."
  type        = string
  default     = null
}

variable "event_retention_days" {
  description = "Days events are kept. Compaction enforces it (KNOWEDGE_RETENTION_DAYS); the lifecycle rule on events/ is a backstop. 0 keeps events forever."
  type        = number
  default     = 365

  validation {
    condition     = var.event_retention_days >= 0
    error_message = "event_retention_days must be 0 (keep forever) or a positive number of days."
  }
}

variable "dead_letter_retention_days" {
  description = "Days dead-letter records are kept (KNOWEDGE_DEAD_LETTER_RETENTION_DAYS, lifecycle backstop on dead-letter/). 0 keeps them forever."
  type        = number
  default     = 30

  validation {
    condition     = var.dead_letter_retention_days >= 0
    error_message = "dead_letter_retention_days must be 0 or a positive number of days."
  }
}

variable "retention_grace_days" {
  description = "Days the lifecycle backstop waits beyond the functions' retention before expiring objects."
  type        = number
  default     = 7
}

variable "noncurrent_version_days" {
  description = "Days a replaced or deleted object version is kept (per-batch files after compaction, files rewritten by an erasure). Keep it within the erasure deadline."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1."
  }
}

variable "access_log_retention_days" {
  description = "Days S3 server access logs are kept."
  type        = number
  default     = 365
}

variable "kms_rotation_days" {
  description = "Automatic rotation period of the KMS key, in days (90 to 2560)."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
