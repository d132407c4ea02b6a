# Only ARNs: the secrets have no value in Terraform.

output "api_keys_arn" {
  description = "ARN of the ingestion API keys secret."
  value       = aws_secretsmanager_secret.this["api-keys"].arn
}

output "pseudonym_key_arn" {
  description = "ARN of the pseudonym key secret."
  value       = aws_secretsmanager_secret.this["pseudonym-key"].arn
}

output "signing_key_arn" {
  description = "ARN of the model signing key secret."
  value       = aws_secretsmanager_secret.this["signing-key"].arn
}

output "cloudflare_api_token_arn" {
  description = "ARN of the Cloudflare API token secret."
  value       = aws_secretsmanager_secret.this["cloudflare-api-token"].arn
}

output "spin_publish_key_arn" {
  description = "ARN of the Spin publish key secret."
  value       = aws_secretsmanager_secret.this["spin-publish-key"].arn
}

output "all_arns" {
  description = "Map of secret key to ARN."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.arn }
}
