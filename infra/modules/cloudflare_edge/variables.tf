variable "account_id" {
  description = "Cloudflare account ID."
  type        = string
}

variable "zone_id" {
  description = "Cloudflare zone ID of route_pattern or custom_domain."
  type        = string
  default     = null
}

variable "script_name" {
  description = "Name of the Worker (wrangler.toml `name`)."
  type        = string
  default     = "knowedge-edge"
}

variable "compatibility_date" {
  description = "Workers compatibility date (wrangler.toml `compatibility_date`)."
  type        = string
  default     = "2026-04-26"
}

variable "source_root" {
  description = "Repository root; the bundle is read from <source_root>/edge/worker/build."
  type        = string
  default     = "../../.."
}

variable "route_pattern" {
  description = "Route on zone_id that runs the Worker, e.g. \"edge.example.com/*\" (null: no route)."
  type        = string
  default     = null
}

variable "custom_domain" {
  description = "Custom domain of the Worker on zone_id, e.g. \"edge.example.com\" (null: none)."
  type        = string
  default     = null
}

variable "workers_dev_enabled" {
  description = "Also serve the Worker on its workers.dev subdomain."
  type        = bool
  default     = false
}

variable "token_audience" {
  description = "KNOWEDGE_TOKEN_AUDIENCE (null: the Worker's default, knowedge-edge)."
  type        = string
  default     = null
}

variable "cors_origins" {
  description = "KNOWEDGE_CORS_ORIGINS: browser origins allowed to call the edge (empty: not bound)."
  type        = list(string)
  default     = []
}

variable "experiment" {
  description = "KNOWEDGE_EXPERIMENT: optional A/B experiment as JSON (null: none)."
  type        = string
  default     = null
}

variable "ingest_url" {
  description = "KNOWEDGE_INGEST_URL: where the Worker forwards POST /v1/events (the ingestion API's /v1/events URL; null: not forwarded)."
  type        = string
  default     = null
}

variable "secret_values" {
  description = "Secret values to upload with this version, by name (KNOWEDGE_SIGNING_PUBLIC_KEY, KNOWEDGE_PSEUDONYM_KEY, KNOWEDGE_TOKEN_KEYS, KNOWEDGE_INGEST_KEY). Secrets not given are inherited from the previous version. Given values are kept in the Terraform state."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "inherit_secrets" {
  description = "Bind secrets not given in secret_values by inheriting them from the Worker's previous version (false: leave them unbound, for a first deployment before `wrangler secret put`)."
  type        = bool
  default     = true
}

variable "log_sampling_rate" {
  description = "Share of requests whose logs Workers Logs keeps (0 to 1)."
  type        = number
  default     = 1
}
