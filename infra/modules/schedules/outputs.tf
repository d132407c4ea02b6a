output "schedule_arns" {
  description = "ARNs of the schedules, by job (compact, report, train)."
  value       = { for k, s in aws_scheduler_schedule.this : k => s.arn }
}

output "scheduler_role_arn" {
  description = "ARN of the role the scheduler invokes the functions with."
  value       = aws_iam_role.scheduler.arn
}

output "dead_letter_queue_name" {
  description = "Name of the queue of invocations the scheduler could not deliver."
  value       = aws_sqs_queue.dlq.name
}

output "dead_letter_queue_arn" {
  description = "ARN of the queue of invocations the scheduler could not deliver."
  value       = aws_sqs_queue.dlq.arn
}

output "schedule_group_name" {
  description = "Name of the schedule group."
  value       = aws_scheduler_schedule_group.this.name
}
