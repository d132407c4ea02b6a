variable "name" {
  description = "Name prefix of the schedule group, role and schedules."
  type        = string
}

variable "compact_function_arn" {
  description = "ARN of the compaction function."
  type        = string
}

variable "compact_schedule_expression" {
  description = "When compaction runs (EventBridge Scheduler expression)."
  type        = string
  default     = "rate(1 hour)"
}

variable "schedule_training" {
  description = "Schedule the training function (false when training runs on AWS Batch, which has its own schedule)."
  type        = bool
  default     = true
}

variable "train_function_arn" {
  description = "ARN of the CPU training function (used when schedule_training is true)."
  type        = string
  default     = null
}

variable "train_schedule_expression" {
  description = "When CPU training runs (EventBridge Scheduler expression)."
  type        = string
  default     = "cron(0 3 * * ? *)"
}

variable "report_function_arn" {
  description = "ARN of the report function (the business dashboard); null schedules none."
  type        = string
  default     = null
}

variable "report_schedule_expression" {
  description = "When the business dashboard is rebuilt (EventBridge Scheduler expression)."
  type        = string
  default     = "cron(30 4 * * ? *)"
}

variable "timezone" {
  description = "Time zone of cron expressions."
  type        = string
  default     = "UTC"
}

variable "enabled" {
  description = "false pauses the schedules without deleting them."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "KMS key of the schedules and the scheduler dead-letter queue."
  type        = string
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary of the scheduler role."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
