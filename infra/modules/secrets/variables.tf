variable "name" {
  description = "Name prefix of the secrets (\"<name>/<key>\")."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key that encrypts the secrets."
  type        = string
}

variable "recovery_window_days" {
  description = "Days a deleted secret can still be restored (0 deletes at once; 7 to 30 otherwise)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
