variable "name" {
  description = "Name of the repository, compute environment, queue, job definition and schedule, e.g. \"knowedge-train-gpu\"."
  type        = string
}

variable "image_tag" {
  description = "Tag of the training image in the repository. Tags are immutable: push each build under a new tag and set it here."
  type        = string
}

variable "images_to_keep" {
  description = "How many images the repository keeps."
  type        = number
  default     = 20
}

variable "vpc_id" {
  description = "VPC of the training instances."
  type        = string
  nullable    = false
}

variable "subnet_ids" {
  description = "Subnets of the training instances (private subnets with a NAT gateway or VPC endpoints for S3, ECR, Secrets Manager and CloudWatch Logs; public subnets need public IPs)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "GPU training needs at least one subnet (gpu_subnet_ids)."
  }
}

variable "instance_types" {
  description = "GPU instance types Batch may start."
  type        = list(string)
  default     = ["g6.xlarge", "g5.xlarge", "g6.2xlarge", "g5.2xlarge"]

  validation {
    condition     = alltrue([for t in var.instance_types : can(regex("^(g5|g6|g6e)\\.", t))])
    error_message = "instance_types must be g5, g6 or g6e instances (the image is built for compute capability 8.6 and later 8.x)."
  }
}

variable "use_spot" {
  description = "Run on Spot instances (cheaper; an interrupted job is retried)."
  type        = bool
  default     = true
}

variable "spot_bid_percentage" {
  description = "Highest Spot price as a percentage of the On-Demand price."
  type        = number
  default     = 100
}

variable "max_vcpus" {
  description = "Most vCPUs the compute environment runs at once (caps cost); it scales to zero when idle."
  type        = number
  default     = 16
}

variable "ec2_image_type" {
  description = "Batch AMI type: ECS_AL2023_NVIDIA (Amazon Linux 2023 with NVIDIA drivers) or ECS_AL2_NVIDIA."
  type        = string
  default     = "ECS_AL2023_NVIDIA"
}

variable "gpus" {
  description = "GPUs per job."
  type        = number
  default     = 1
}

variable "vcpus" {
  description = "vCPUs per job."
  type        = number
  default     = 4
}

variable "memory_mib" {
  description = "Memory per job in MiB (leave room for the ECS agent: a g5/g6.xlarge has 16 GiB)."
  type        = number
  default     = 14336
}

variable "job_timeout_seconds" {
  description = "Longest a training attempt may run."
  type        = number
  default     = 14400
}

variable "retry_attempts" {
  description = "Attempts of a job whose host went away (Spot interruption)."
  type        = number
  default     = 3
}

variable "environment" {
  description = "Plain settings of the training run: NAME = value (the same map the training function gets)."
  type        = map(string)
  default     = {}
}

variable "secret_environment" {
  description = "Secret settings: NAME = Secrets Manager secret ARN. Batch puts the secret value into NAME."
  type        = map(string)
}

variable "buckets" {
  description = "Buckets object_access may name: key (\"lake\", \"models\") = bucket ARN."
  type        = map(string)
}

variable "object_access" {
  description = "Object storage grants of the job, as for the training function."
  type = list(object({
    bucket  = string
    prefix  = string
    actions = list(string)
  }))
}

variable "schedule_expression" {
  description = "When the training job is submitted (EventBridge Scheduler expression)."
  type        = string
  default     = "cron(0 3 * * ? *)"
}

variable "schedule_group_name" {
  description = "Schedule group of the schedule (null: the default group)."
  type        = string
  default     = null
}

variable "schedule_enabled" {
  description = "false pauses the schedule."
  type        = bool
  default     = true
}

variable "timezone" {
  description = "Time zone of cron expressions."
  type        = string
  default     = "UTC"
}

variable "kms_key_arn" {
  description = "ARN of the stack's KMS key."
  type        = string
}

variable "log_retention_days" {
  description = "Days the job logs are kept."
  type        = number
  default     = 365
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary of the roles."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
