output "kms_key_arn" {
  description = "ARN of the stack's customer-managed KMS key."
  value       = aws_kms_key.main.arn
}

output "lake_bucket_name" {
  description = "Name of the lake bucket."
  value       = aws_s3_bucket.data["lake"].bucket
}

output "lake_bucket_arn" {
  description = "ARN of the lake bucket."
  value       = aws_s3_bucket.data["lake"].arn
}

output "models_bucket_name" {
  description = "Name of the models bucket."
  value       = aws_s3_bucket.data["models"].bucket
}

output "models_bucket_arn" {
  description = "ARN of the models bucket."
  value       = aws_s3_bucket.data["models"].arn
}

output "log_bucket_name" {
  description = "Name of the S3 access-log bucket."
  value       = aws_s3_bucket.logs.bucket
}

output "log_bucket_arn" {
  description = "ARN of the S3 access-log bucket."
  value       = aws_s3_bucket.logs.arn
}
