# Secrets Manager secrets of the stack, created WITHOUT values. Operators put each value once
# (and on rotation) with `aws secretsmanager put-secret-value --secret-id <arn> --secret-string ...`,
# so no secret value ever passes through Terraform, its state or its outputs. The functions read
# the values at cold start through the AWS Parameters and Secrets Lambda extension; the GPU
# training job gets them from AWS Batch (`secrets` of the job definition).

locals {
  # key => description. The keys are used in the secret names: "<name>/<key>".
  secrets = {
    "api-keys"             = "Ingestion API keys (KNOWEDGE_API_KEYS): comma-separated name:scopes:secret entries."
    "pseudonym-key"        = "HMAC key that pseudonymises learner ids (KNOWEDGE_PSEUDONYM_KEY), hex; the Worker uses the same value."
    "signing-key"          = "ed25519 key that signs model artifacts (KNOWEDGE_SIGNING_KEY), hex."
    "cloudflare-api-token" = "Cloudflare API token allowed to write the Workers KV namespace of the models (KNOWEDGE_CLOUDFLARE_API_TOKEN)."
    "spin-publish-key"     = "Bearer key of the Spin app's model publish route (KNOWEDGE_SPIN_PUBLISH_KEY)."
  }
}

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:These are keys whose rotation must be coordinated with the edge and with issued learner tokens; operators rotate them by procedure (docs/PRIVACY.md), not with a rotation function.
  for_each = local.secrets

  name                    = "${var.name}/${each.key}"
  description             = each.value
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}
