# The public ingestion endpoint: an API Gateway HTTP API (payload format 2.0) in front of the
# ingest function. The function authenticates every request itself (ingest and admin keys as
# `Authorization: Bearer ...`) and answers CORS preflights with the one cross-origin policy it
# shares with the edge, unless `api_handles_cors` moves preflights to API Gateway.

locals {
  routes = merge(
    {
      "POST /v1/events"                 = "events"
      "POST /v1/exposures"              = "events"
      "POST /v1/admin/erasures"         = "admin"
      "GET /v1/admin/erasures/{job_id}" = "admin"
    },
    var.api_handles_cors ? {} : {
      "OPTIONS /v1/events"                  = "events"
      "OPTIONS /v1/admin/erasures"          = "admin"
      "OPTIONS /v1/admin/erasures/{job_id}" = "admin"
    },
  )
}

resource "aws_apigatewayv2_api" "this" {
  name          = var.name
  description   = "knowedge event ingestion"
  protocol_type = "HTTP"

  # The function is the only way in; the execute-api hostname can be switched off when a
  # custom domain is used.
  disable_execute_api_endpoint = var.domain_name != null && var.disable_execute_api_endpoint

  dynamic "cors_configuration" {
    for_each = var.api_handles_cors ? [1] : []
    content {
      allow_origins = var.cors_origins
      allow_methods = ["GET", "POST", "OPTIONS"]
      allow_headers = ["authorization", "content-type", "content-encoding"]
      max_age       = 3600
    }
  }

  tags = var.tags
}

resource "aws_apigatewayv2_integration" "ingest" {
  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_uri        = var.function_invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = var.integration_timeout_ms
}

resource "aws_apigatewayv2_route" "this" {
  #checkov:skip=CKV_AWS_309:The ingest function authenticates every request (ingest and admin keys, constant-time comparison, audited admin use); an API Gateway authorizer would duplicate it and add latency.
  for_each = local.routes

  api_id             = aws_apigatewayv2_api.this.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.ingest.id}"
  authorization_type = "NONE"
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit    = var.throttling_rate_limit
    throttling_burst_limit   = var.throttling_burst_limit
    detailed_metrics_enabled = true
  }

  # Admin routes get their own, lower limits.
  dynamic "route_settings" {
    for_each = { for k, v in local.routes : k => v if v == "admin" }
    content {
      route_key              = route_settings.key
      throttling_rate_limit  = var.admin_throttling_rate_limit
      throttling_burst_limit = var.admin_throttling_burst_limit
    }
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      ip                 = "$context.identity.sourceIp"
      userAgent          = "$context.identity.userAgent"
      routeKey           = "$context.routeKey"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      latency            = "$context.responseLatency"
      integrationStatus  = "$context.integrationStatus"
      integrationLatency = "$context.integrationLatency"
      integrationError   = "$context.integrationErrorMessage"
      errorMessage       = "$context.error.message"
    })
  }

  tags = var.tags

  depends_on = [aws_apigatewayv2_route.this]
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/*"
}

# Optional custom domain (a regional ACM certificate for it must exist).
resource "aws_apigatewayv2_domain_name" "this" {
  count = var.domain_name == null ? 0 : 1

  domain_name = var.domain_name
  domain_name_configuration {
    certificate_arn = var.certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }
  tags = var.tags
}

resource "aws_apigatewayv2_api_mapping" "this" {
  count = var.domain_name == null ? 0 : 1

  api_id      = aws_apigatewayv2_api.this.id
  domain_name = aws_apigatewayv2_domain_name.this[0].id
  stage       = aws_apigatewayv2_stage.default.id
}
