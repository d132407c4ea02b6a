variable "name" {
  description = "Name of the Athena workgroup and prefix of the results bucket."
  type        = string
}

variable "database_name" {
  description = "Name of the Glue database of the lake tables."
  type        = string
  default     = "knowedge"
}

variable "lake_bucket_name" {
  description = "Name of the lake bucket."
  type        = string
}

variable "log_bucket_name" {
  description = "Bucket that receives the S3 access logs of the results bucket."
  type        = string
}

variable "results_bucket_name" {
  description = "Name of the query results bucket; null derives \"<name>-athena-results-<account>-<region>\"."
  type        = string
  default     = null
}

variable "results_retention_days" {
  description = "Days query results are kept."
  type        = number
  default     = 30
}

variable "projection_start_date" {
  description = "Earliest `dt` partition (yyyy-MM-dd) partition projection considers."
  type        = string
  default     = "2024-01-01"

  validation {
    condition     = can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", var.projection_start_date))
    error_message = "projection_start_date must be written yyyy-MM-dd."
  }
}

variable "bytes_scanned_cutoff_per_query" {
  description = "Largest number of bytes one query may scan (cost guard; at least 10 MB)."
  type        = number
  default     = 107374182400
}

variable "manage_catalog_encryption" {
  description = "Encrypt the account's Glue Data Catalog in this region with the stack's key (an account-wide setting)."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "KMS key of the query results."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
