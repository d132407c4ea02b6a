output "api_id" {
  description = "ID of the HTTP API (the ApiId dimension of its metrics)."
  value       = aws_apigatewayv2_api.this.id
}

output "api_endpoint" {
  description = "Base URL of the API (execute-api hostname)."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "ingest_url" {
  description = "URL clients post events to."
  value       = var.domain_name == null ? "${aws_apigatewayv2_api.this.api_endpoint}/v1/events" : "https://${var.domain_name}/v1/events"
}

output "stage_name" {
  description = "Name of the stage."
  value       = aws_apigatewayv2_stage.default.name
}

output "domain_target" {
  description = "Hostname a DNS record of domain_name must point at (null without a custom domain)."
  value       = var.domain_name == null ? null : aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].target_domain_name
}

output "access_log_group_name" {
  description = "Log group of the API's access logs."
  value       = aws_cloudwatch_log_group.access.name
}
