output "function_name" {
  description = "Name of the function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the function."
  value       = aws_lambda_function.this.arn
}

output "invoke_arn" {
  description = "ARN API Gateway uses to invoke the function."
  value       = aws_lambda_function.this.invoke_arn
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the function's execution role."
  value       = aws_iam_role.this.name
}

output "log_group_name" {
  description = "Name of the function's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of the function's log group."
  value       = aws_cloudwatch_log_group.this.arn
}

output "dead_letter_queue_arn" {
  description = "ARN of the dead-letter queue of failed asynchronous invocations."
  value       = aws_sqs_queue.dlq.arn
}

output "dead_letter_queue_name" {
  description = "Name of the dead-letter queue of failed asynchronous invocations."
  value       = aws_sqs_queue.dlq.name
}

output "environment" {
  description = "The plain settings given to the function (no secrets)."
  value       = var.environment
}

output "secret_environment" {
  description = "The secret settings given to the function: NAME = secret ARN (ARNs, not values)."
  value       = var.secret_environment
}

output "object_access" {
  description = "The object storage grants of the function."
  value       = var.object_access
}
