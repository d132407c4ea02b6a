variable "name" {
  description = "Name of the HTTP API, e.g. \"knowedge-ingest\"."
  type        = string
}

variable "function_name" {
  description = "Name of the ingest function."
  type        = string
}

variable "function_invoke_arn" {
  description = "Invoke ARN of the ingest function."
  type        = string
}

variable "throttling_rate_limit" {
  description = "Steady-state requests per second the stage accepts (all routes together)."
  type        = number
  default     = 500
}

variable "throttling_burst_limit" {
  description = "Burst of requests the stage accepts above the rate."
  type        = number
  default     = 1000
}

variable "admin_throttling_rate_limit" {
  description = "Requests per second of the admin (erasure) routes."
  type        = number
  default     = 5
}

variable "admin_throttling_burst_limit" {
  description = "Burst of the admin (erasure) routes."
  type        = number
  default     = 10
}

variable "cors_origins" {
  description = "Browser origins allowed to post events (also given to the function as KNOWEDGE_CORS_ORIGINS)."
  type        = list(string)
  default     = []
}

variable "api_handles_cors" {
  description = "true: API Gateway answers CORS preflights for cors_origins; false (default): the function does, with the policy it shares with the edge."
  type        = bool
  default     = false
}

variable "integration_timeout_ms" {
  description = "How long API Gateway waits for the function, in milliseconds (at most 30000)."
  type        = number
  default     = 29000
}

variable "domain_name" {
  description = "Optional custom domain of the API, e.g. ingest.example.com."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "Regional ACM certificate of domain_name."
  type        = string
  default     = null
}

variable "disable_execute_api_endpoint" {
  description = "With a custom domain, switch the default execute-api hostname off."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "KMS key of the access-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days the API's access logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
