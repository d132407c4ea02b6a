variable "name" {
  description = "Name prefix of the topic, alarms and rules."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the alarm topic."
  type        = string
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "api_id" {
  description = "ID of the ingestion HTTP API."
  type        = string
}

variable "functions" {
  description = "The functions, by role (ingest, compact, train, report): Lambda function name and the `function` dimension value of its EMF metrics (the binary name)."
  type = object({
    ingest  = object({ function_name = string, metric_function = string })
    compact = object({ function_name = string, metric_function = string })
    train   = object({ function_name = string, metric_function = string })
    report  = object({ function_name = string, metric_function = string })
  })
}

variable "dead_letter_queues" {
  description = "SQS dead-letter queues to watch: label = queue name."
  type        = map(string)
  default     = {}
}

variable "training_mode" {
  description = "\"lambda\" or \"gpu_batch\": which training failures to watch."
  type        = string
  default     = "lambda"

  validation {
    condition     = contains(["lambda", "gpu_batch"], var.training_mode)
    error_message = "training_mode must be \"lambda\" or \"gpu_batch\"."
  }
}

variable "batch_job_queue_arn" {
  description = "Job queue of the GPU training jobs (training_mode = \"gpu_batch\")."
  type        = string
  default     = null
}

variable "api_5xx_threshold" {
  description = "5xx answers in 5 minutes that raise the alarm."
  type        = number
  default     = 5
}

variable "ingest_error_threshold" {
  description = "Failed ingest invocations in 5 minutes that raise the alarm."
  type        = number
  default     = 5
}

variable "dead_letter_threshold" {
  description = "Dead-letter records within dead_letter_period_seconds above which the alarm is raised."
  type        = number
  default     = 100
}

variable "dead_letter_period_seconds" {
  description = "Window of the dead-letter growth alarm, in seconds (a multiple of 60)."
  type        = number
  default     = 3600
}

variable "no_model_days" {
  description = "Days without a promoted model that raise the alarm (1 to 7, CloudWatch's longest evaluation range)."
  type        = number
  default     = 3

  validation {
    condition     = var.no_model_days >= 1 && var.no_model_days <= 7
    error_message = "no_model_days must be between 1 and 7."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
