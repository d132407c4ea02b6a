output "kv_namespace_id" {
  description = "ID of the MODELS KV namespace (KNOWEDGE_CLOUDFLARE_KV_NAMESPACE of the publishing functions)."
  value       = cloudflare_workers_kv_namespace.models.id
}

output "script_name" {
  description = "Name of the Worker."
  value       = cloudflare_worker.this.name
}

output "version_id" {
  description = "ID of the deployed Worker version."
  value       = cloudflare_worker_version.this.id
}

output "url" {
  description = "Public base URL of the edge (custom domain or route host), null with neither."
  value       = var.custom_domain != null ? "https://${var.custom_domain}" : (var.route_pattern != null ? "https://${trimsuffix(trimsuffix(var.route_pattern, "*"), "/")}" : null)
}
