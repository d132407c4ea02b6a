# The knowedge edge scorer on Cloudflare Workers, deployed from the worker-build bundle
# (edge/worker/build after `worker-build --release`): the Worker, its KV namespace of models, the
# bindings of edge/worker/wrangler.toml, and a route on a zone or a custom domain.
#
# The bundle is three modules (build/worker/shim.mjs imports ../index.js, which imports
# ./index_bg.wasm). `cloudflare_workers_script` uploads a single content file, so the Worker is
# deployed as a `cloudflare_worker` with a `cloudflare_worker_version` that uploads all three
# modules and a `cloudflare_workers_deployment` that sends all traffic to that version.
#
# Secrets (KNOWEDGE_SIGNING_PUBLIC_KEY, KNOWEDGE_PSEUDONYM_KEY, KNOWEDGE_TOKEN_KEYS,
# KNOWEDGE_INGEST_KEY): by default each version INHERITS the secret from the Worker's previous
# version, so values set once with `wrangler secret put` never pass through Terraform. A value
# given in `secret_values` is uploaded instead (and is then stored in the Terraform state, which
# must be an encrypted backend); use that for a rotation or a first deployment, then remove it.
# For a first deployment without values, `inherit_secrets = false` leaves the secrets unbound
# (there is no earlier version to inherit from); after `wrangler secret put`, apply again with
# the default.

locals {
  bundle = "${var.source_root}/edge/worker/build"

  # The Worker's secrets, as edge/worker/wrangler.toml lists them.
  secret_names = ["KNOWEDGE_SIGNING_PUBLIC_KEY", "KNOWEDGE_PSEUDONYM_KEY", "KNOWEDGE_TOKEN_KEYS", "KNOWEDGE_INGEST_KEY"]

  # Binding type of each secret: "secret_text" uploads the given value, "inherit" keeps the
  # previous version's value, null leaves the secret unbound (inherit_secrets = false).
  secret_type = {
    for name in local.secret_names : name => (
      contains(keys(nonsensitive(var.secret_values)), name) ? "secret_text" : (var.inherit_secrets ? "inherit" : null)
    )
  }
}

resource "cloudflare_workers_kv_namespace" "models" {
  account_id = var.account_id
  title      = "${var.script_name}-models"
}

resource "cloudflare_worker" "this" {
  account_id = var.account_id
  name       = var.script_name

  observability = {
    enabled            = true
    head_sampling_rate = var.log_sampling_rate
    logs = {
      enabled         = true
      invocation_logs = true
    }
  }

  subdomain = {
    enabled = var.workers_dev_enabled
  }
}

resource "cloudflare_worker_version" "this" {
  account_id         = var.account_id
  worker_id          = cloudflare_worker.this.id
  compatibility_date = var.compatibility_date
  main_module        = "worker/shim.mjs"

  modules = [
    {
      name         = "worker/shim.mjs"
      content_type = "application/javascript+module"
      content_file = "${local.bundle}/worker/shim.mjs"
    },
    {
      name         = "index.js"
      content_type = "application/javascript+module"
      content_file = "${local.bundle}/index.js"
    },
    {
      name         = "index_bg.wasm"
      content_type = "application/wasm"
      content_file = "${local.bundle}/index_bg.wasm"
    },
  ]

  # The bindings of edge/worker/wrangler.toml: the MODELS KV namespace, the secrets and the
  # plain vars. Plain vars left null are not bound (the Worker then uses its defaults).
  bindings = concat(
    [
      {
        name         = "MODELS"
        type         = "kv_namespace"
        namespace_id = cloudflare_workers_kv_namespace.models.id
      },
    ],
    [
      for b in [
        {
          name = "KNOWEDGE_SIGNING_PUBLIC_KEY"
          type = local.secret_type["KNOWEDGE_SIGNING_PUBLIC_KEY"]
          text = lookup(var.secret_values, "KNOWEDGE_SIGNING_PUBLIC_KEY", null)
        },
        {
          name = "KNOWEDGE_PSEUDONYM_KEY"
          type = local.secret_type["KNOWEDGE_PSEUDONYM_KEY"]
          text = lookup(var.secret_values, "KNOWEDGE_PSEUDONYM_KEY", null)
        },
        {
          name = "KNOWEDGE_TOKEN_KEYS"
          type = local.secret_type["KNOWEDGE_TOKEN_KEYS"]
          text = lookup(var.secret_values, "KNOWEDGE_TOKEN_KEYS", null)
        },
        {
          name = "KNOWEDGE_INGEST_KEY"
          type = local.secret_type["KNOWEDGE_INGEST_KEY"]
          text = lookup(var.secret_values, "KNOWEDGE_INGEST_KEY", null)
        },
      ] : b if b.type != null
    ],
    [
      for b in [
        {
          name = "KNOWEDGE_TOKEN_AUDIENCE"
          type = "plain_text"
          text = var.token_audience
        },
        {
          name = "KNOWEDGE_CORS_ORIGINS"
          type = "plain_text"
          text = length(var.cors_origins) == 0 ? null : join(",", var.cors_origins)
        },
        {
          name = "KNOWEDGE_EXPERIMENT"
          type = "plain_text"
          text = var.experiment
        },
        {
          name = "KNOWEDGE_INGEST_URL"
          type = "plain_text"
          text = var.ingest_url
        },
      ] : b if b.text != null
    ],
  )
}

resource "cloudflare_workers_deployment" "this" {
  account_id  = var.account_id
  script_name = cloudflare_worker.this.name
  strategy    = "percentage"

  versions = [
    {
      percentage = 100
      version_id = cloudflare_worker_version.this.id
    },
  ]

  lifecycle {
    precondition {
      condition     = (var.route_pattern == null && var.custom_domain == null) || var.zone_id != null
      error_message = "route_pattern and custom_domain need zone_id."
    }
    precondition {
      condition     = alltrue([for k in keys(nonsensitive(var.secret_values)) : contains(local.secret_names, k)])
      error_message = "secret_values may only name KNOWEDGE_SIGNING_PUBLIC_KEY, KNOWEDGE_PSEUDONYM_KEY, KNOWEDGE_TOKEN_KEYS and KNOWEDGE_INGEST_KEY."
    }
  }
}

# Either a route on an existing zone (e.g. "edge.example.com/*")...
resource "cloudflare_workers_route" "this" {
  count = var.route_pattern == null ? 0 : 1

  zone_id = var.zone_id
  pattern = var.route_pattern
  script  = cloudflare_worker.this.name

  depends_on = [cloudflare_workers_deployment.this]
}

# ...or a custom domain that Cloudflare creates the DNS record and certificate for.
resource "cloudflare_workers_custom_domain" "this" {
  count = var.custom_domain == null ? 0 : 1

  account_id = var.account_id
  zone_id    = var.zone_id
  hostname   = var.custom_domain
  service    = cloudflare_worker.this.name

  depends_on = [cloudflare_workers_deployment.this]
}
