#!/usr/bin/env bash
# Puts the secret values of a knowedge stack (docs/DEPLOY.md, "Secrets"): the five Secrets
# Manager secrets Terraform created empty, and the four secrets of the Worker. Values travel on
# standard input, never on a command line, and never through Terraform.
#
#   infra/put-secrets.sh KEY_DIR
#
# KEY_DIR is a directory of `knowedge keys generate`. The keys the stack needs beyond those are
# created there on the first run (and reused afterwards):
#
#   edge-ingest.key    the Worker's ingest API key (`edge:events.write`, KNOWEDGE_INGEST_KEY)
#   admin.key          an admin API key (`ops:admin`: erasure requests, docs/PRIVACY.md)
#   spin-publish.key   the bearer key of the Spin app's model publish route
#
# Settings (environment variables):
#
#   NAME                        name prefix of the stack (default knowedge: secrets knowedge/…)
#   AWS_REGION                  the stack's region (else the AWS CLI's configured region)
#   KNOWEDGE_CLOUDFLARE_KV_TOKEN  a Cloudflare API token allowed only "Workers KV Storage: Edit",
#                               with which the functions publish models (stored as <NAME>/cloudflare-api-token)
#   CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID
#                               wrangler's credentials for the Worker's secrets (the token Terraform uses)
#   WORKER                      the Worker's name (default knowedge-edge)
#   SKIP_WORKER=1               only the AWS secrets (the Worker's were given to Terraform instead)
#
# Run it again after a rotation (docs/PRIVACY.md, "Keys and rotation"): every value is put again.

set -euo pipefail

fail() {
  printf 'put-secrets: %s\n' "$*" >&2
  exit 1
}

[[ $# -eq 1 ]] || fail "usage: infra/put-secrets.sh KEY_DIR"
KEYS=$1
NAME=${NAME:-knowedge}
WORKER=${WORKER:-knowedge-edge}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

for file in signing.key signing.pub pseudonym.key ingest.key token.pub; do
  [[ -r $KEYS/$file ]] || fail "$KEYS/$file is missing: run 'knowedge keys generate --dir $KEYS' first"
done
[[ -n ${KNOWEDGE_CLOUDFLARE_KV_TOKEN:-} ]] ||
  fail "KNOWEDGE_CLOUDFLARE_KV_TOKEN is not set (a Cloudflare token with Workers KV Storage: Edit)"
command -v aws >/dev/null || fail "the AWS CLI is not on PATH"
AWS_REGION=${AWS_REGION:-$(aws configure get region || true)}
[[ -n $AWS_REGION ]] || fail "AWS_REGION is not set and the AWS CLI has no region configured"
export AWS_REGION

# A key file's value, without the trailing newline.
value() { printf '%s' "$(<"$KEYS/$1")"; }

# Creates KEYS/FILE with a fresh random key unless it exists.
ensure_key() {
  local file=$1
  [[ -e $KEYS/$file ]] && return
  (
    umask 077
    printf 'kn_%s\n' "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >"$KEYS/$file"
  )
  printf 'put-secrets: created %s\n' "$KEYS/$file"
}
ensure_key edge-ingest.key
ensure_key admin.key
ensure_key spin-publish.key

# `put SECRET` with the value on standard input.
put() {
  aws secretsmanager put-secret-value --secret-id "$NAME/$1" --secret-string file:///dev/stdin >/dev/null ||
    fail "could not put $NAME/$1 (has terraform apply created it? are AWS_REGION and NAME right?)"
  printf 'put-secrets: %s/%s\n' "$NAME" "$1"
}

printf 'web:events.write:%s,edge:events.write:%s,ops:admin:%s' \
  "$(value ingest.key)" "$(value edge-ingest.key)" "$(value admin.key)" | put api-keys
value pseudonym.key | put pseudonym-key
value signing.key | put signing-key
printf '%s' "$KNOWEDGE_CLOUDFLARE_KV_TOKEN" | put cloudflare-api-token
value spin-publish.key | put spin-publish-key

if [[ ${SKIP_WORKER:-} != 1 ]]; then
  [[ -n ${CLOUDFLARE_API_TOKEN:-} && -n ${CLOUDFLARE_ACCOUNT_ID:-} ]] ||
    fail "CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID are needed for the Worker's secrets (or SKIP_WORKER=1)"
  [[ -x $ROOT/edge/worker/node_modules/.bin/wrangler ]] ||
    fail "wrangler is not installed in edge/worker: run 'cargo xtask worker' first"
  worker_secret() {
    (cd "$ROOT/edge/worker" && node_modules/.bin/wrangler secret put "$1" --name "$WORKER" >/dev/null) ||
      fail "wrangler could not set $1 on the Worker $WORKER"
    printf 'put-secrets: Worker %s: %s\n' "$WORKER" "$1"
  }
  value signing.pub | worker_secret KNOWEDGE_SIGNING_PUBLIC_KEY
  value pseudonym.key | worker_secret KNOWEDGE_PSEUDONYM_KEY
  value token.pub | worker_secret KNOWEDGE_TOKEN_KEYS
  value edge-ingest.key | worker_secret KNOWEDGE_INGEST_KEY
fi

printf 'put-secrets: done; the functions read the values at their next cold start (docs/DEPLOY.md, "Secrets").\n'
printf 'put-secrets: a Spin app that receives models needs %s as its publish key (docs/DEPLOY.md).\n' "$KEYS/spin-publish.key"
