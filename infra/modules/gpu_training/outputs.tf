output "repository_url" {
  description = "URL of the training image repository (docker push target)."
  value       = aws_ecr_repository.this.repository_url
}

output "job_queue_arn" {
  description = "ARN of the job queue."
  value       = aws_batch_job_queue.this.arn
}

output "job_queue_name" {
  description = "Name of the job queue."
  value       = aws_batch_job_queue.this.name
}

output "job_definition_arn" {
  description = "ARN of the current job definition revision."
  value       = aws_batch_job_definition.this.arn
}

output "job_definition_name" {
  description = "Name of the job definition."
  value       = aws_batch_job_definition.this.name
}

output "log_group_name" {
  description = "Log group of the training jobs."
  value       = aws_cloudwatch_log_group.this.name
}

output "schedule_arn" {
  description = "ARN of the training schedule."
  value       = aws_scheduler_schedule.this.arn
}

output "job_role_arn" {
  description = "ARN of the role the training container runs with."
  value       = aws_iam_role.job.arn
}
