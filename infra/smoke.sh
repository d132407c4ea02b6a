#!/usr/bin/env bash
# End-to-end check of a deployed knowedge stack (docs/DEPLOY.md, "Smoke test"):
#
#   1. posts a batch of synthetic learner events to ingestion with the API key, and a demo
#      data set (learners with planted interests) after it;
#   2. runs training once: invokes the training Lambda function, or submits the AWS Batch
#      GPU job and waits for it;
#   3. waits until the edge serves the model training left in `current` (training pushes
#      it to Workers KV and to the Spin app by itself);
#   4. asks the edge for a learner's recommendations with a learner token and checks that a
#      personalised answer arrives.
#
# Each step that fails stops the script with a message saying which one and why (exit 1;
# exit 2 for a missing setting or tool).
#
# Settings (environment variables). Those marked (output) default to the Terraform outputs of
# TF_DIR (default infra/examples/production) when `terraform output` can read them there.
#
#   INGEST_URL            (output ingest_url) the ingestion URL
#   EDGE_URL              (output edge_url) the Worker's base URL
#   SPIN_URL              optional: the Spin app's URL, checked like the Worker when set
#   AWS_REGION            the stack's region (else the AWS CLI's configured region)
#   KNOWEDGE_KEYS         key directory of `knowedge keys generate` (default .knowedge/keys):
#                         token.key signs the learner token, ingest.key is the default API key
#   INGEST_KEY            the ingest API key secret (default: the content of $KNOWEDGE_KEYS/ingest.key)
#   TRAINING_MODE         lambda or gpu_batch, as in terraform.tfvars (gpu_batch when the output
#                         gpu_repository_url is set, else lambda)
#   TRAIN_FUNCTION        (output function_names.train) the training function (else knowedge-train)
#   BATCH_JOB_QUEUE       gpu_batch: the job queue (default knowedge-train-gpu)
#   BATCH_JOB_DEFINITION  gpu_batch: the job definition (default knowedge-train-gpu)
#   KNOWEDGE_MODELS       (output models_bucket) the model store, s3://<bucket>; its `current` names
#                         the version the edge must serve (with gpu_batch the script cannot know
#                         it otherwise)
#   KNOWEDGE_LAKE         (output lake_bucket) the lake, s3://<bucket>; the demo catalogue (item
#                         categories and prices) is stored there
#   KNOWEDGE              the knowedge command (default `knowedge`; e.g. "cargo run -q -p knowedge --")
#   SMOKE_USER            the learner asked about (default learner-0000, one of the demo learners)
#   SMOKE_LEARNERS        demo learners to send (default 600; 0 sends only the first batch)
#   SMOKE_TIMEOUT         seconds to wait for the edge to serve the model (default 600)
#   SMOKE_JOB_TIMEOUT     gpu_batch: seconds to wait for the training job (default 3600)
#
# The script writes synthetic learners (`learner-0000` …) into the lake: run it on a new
# stack or a staging one, and erase them afterwards (docs/PRIVACY.md) where it matters.

set -euo pipefail

say() { printf 'smoke: %s\n' "$*"; }
fail() {
  printf 'smoke: FAILED: %s\n' "$*" >&2
  exit 1
}
need_setting() {
  printf 'smoke: %s\n' "$*" >&2
  exit 2
}

# --- settings -------------------------------------------------------------------------------

TF_DIR=${TF_DIR:-$(dirname "$0")/examples/production}
# `output JQ_PATH`: a value of the Terraform outputs, or nothing.
OUTPUTS=""
if command -v terraform >/dev/null && command -v jq >/dev/null; then
  OUTPUTS=$(terraform -chdir="$TF_DIR" output -json 2>/dev/null || true)
fi
output() {
  [[ -n $OUTPUTS ]] || return 0
  jq -r "$1 // empty" <<<"$OUTPUTS" 2>/dev/null || true
}
INGEST_URL=${INGEST_URL:-$(output .ingest_url.value)}
EDGE_URL=${EDGE_URL:-$(output .edge_url.value)}
TRAIN_FUNCTION=${TRAIN_FUNCTION:-$(output .function_names.value.train)}
if [[ -z ${KNOWEDGE_MODELS:-} && -n $(output .models_bucket.value) ]]; then
  KNOWEDGE_MODELS=s3://$(output .models_bucket.value)
fi
if [[ -z ${KNOWEDGE_LAKE:-} && -n $(output .lake_bucket.value) ]]; then
  KNOWEDGE_LAKE=s3://$(output .lake_bucket.value)
fi

INGEST_URL=${INGEST_URL:-}
EDGE_URL=${EDGE_URL:-}
SPIN_URL=${SPIN_URL:-}
KNOWEDGE_KEYS=${KNOWEDGE_KEYS:-.knowedge/keys}
# A GPU image repository exists only with training_mode = "gpu_batch".
if [[ -z ${TRAINING_MODE:-} && -n $(output .gpu_repository_url.value) ]]; then
  TRAINING_MODE=gpu_batch
fi
TRAINING_MODE=${TRAINING_MODE:-lambda}
TRAIN_FUNCTION=${TRAIN_FUNCTION:-knowedge-train}
BATCH_JOB_QUEUE=${BATCH_JOB_QUEUE:-knowedge-train-gpu}
BATCH_JOB_DEFINITION=${BATCH_JOB_DEFINITION:-knowedge-train-gpu}
KNOWEDGE_MODELS=${KNOWEDGE_MODELS:-}
KNOWEDGE_LAKE=${KNOWEDGE_LAKE:-}
SMOKE_USER=${SMOKE_USER:-learner-0000}
SMOKE_LEARNERS=${SMOKE_LEARNERS:-600}
SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-600}
SMOKE_JOB_TIMEOUT=${SMOKE_JOB_TIMEOUT:-3600}
read -r -a KNOWEDGE_CMD <<<"${KNOWEDGE:-knowedge}"

[[ -n $INGEST_URL ]] || need_setting "INGEST_URL is not set and no Terraform output ingest_url in $TF_DIR"
[[ -n $EDGE_URL ]] || need_setting "EDGE_URL is not set and no Terraform output edge_url in $TF_DIR (edge_custom_domain or edge_route_pattern)"
INGEST_URL=${INGEST_URL%/}
INGEST_URL=${INGEST_URL%/v1/events}
EDGE_URL=${EDGE_URL%/}
SPIN_URL=${SPIN_URL%/}
case $TRAINING_MODE in
  lambda | gpu_batch) ;;
  *) need_setting "TRAINING_MODE must be lambda or gpu_batch, not '$TRAINING_MODE'" ;;
esac
[[ $SMOKE_LEARNERS =~ ^[0-9]+$ ]] || need_setting "SMOKE_LEARNERS must be a number"
[[ $SMOKE_TIMEOUT =~ ^[0-9]+$ ]] || need_setting "SMOKE_TIMEOUT must be a number of seconds"
[[ $SMOKE_JOB_TIMEOUT =~ ^[0-9]+$ ]] || need_setting "SMOKE_JOB_TIMEOUT must be a number of seconds"

for tool in curl jq aws "${KNOWEDGE_CMD[0]}"; do
  command -v "$tool" >/dev/null || need_setting "'$tool' is not on PATH"
done
[[ -r $KNOWEDGE_KEYS/token.key ]] ||
  need_setting "$KNOWEDGE_KEYS/token.key is missing: run 'knowedge keys generate --dir $KNOWEDGE_KEYS' (docs/DEPLOY.md)"
if [[ -z ${INGEST_KEY:-} ]]; then
  [[ -r $KNOWEDGE_KEYS/ingest.key ]] || need_setting "INGEST_KEY is not set and $KNOWEDGE_KEYS/ingest.key is missing"
  INGEST_KEY=$(<"$KNOWEDGE_KEYS/ingest.key")
fi
AWS_REGION=${AWS_REGION:-$(aws configure get region || true)}
[[ -n $AWS_REGION ]] || need_setting "AWS_REGION is not set and the AWS CLI has no region configured"
export AWS_REGION

WORK=$(mktemp -d "${TMPDIR:-/tmp}/knowedge-smoke.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# Secrets go to curl in a header file, never on its command line (visible in `ps`).
umask 077
printf 'Authorization: Bearer %s\n' "$INGEST_KEY" >"$WORK/ingest.header"

# `http METHOD URL BODY_FILE [curl options…]`: prints the status code, leaves the body in BODY_FILE.
http() {
  local method=$1 url=$2 out=$3 code
  shift 3
  : >"$out"
  code=$(curl -sS --max-time 30 -X "$method" -o "$out" -w '%{http_code}' "$@" "$url") || true
  printf '%s' "${code:-000}"
}

uuid() {
  if [[ -r /proc/sys/kernel/random/uuid ]]; then
    cat /proc/sys/kernel/random/uuid
  else
    uuidgen | tr '[:upper:]' '[:lower:]'
  fi
}

# The model an edge serves now ("" when none): GET /healthz answers {"status", "model_id"}.
served_model() {
  local code
  code=$(http GET "$1/healthz" "$WORK/health.json")
  if [[ $code == 200 ]]; then
    jq -r '.model_id // ""' "$WORK/health.json"
  else
    echo ""
  fi
}

# --- 0. what the edges serve now --------------------------------------------------------------

before=$(served_model "$EDGE_URL")
say "the Worker at $EDGE_URL serves ${before:-no model yet}"

# --- 1. events --------------------------------------------------------------------------------

code=$(http POST "$INGEST_URL/v1/events" "$WORK/answer.json" -H 'content-type: application/json' -d '{"events":[]}')
case $code in
  401) ;;
  000) fail "ingestion at $INGEST_URL did not answer (DNS, TLS or network)" ;;
  *) fail "ingestion answered $code to a batch without an API key; it must refuse it with 401 (is the api-keys secret put? docs/DEPLOY.md, \"Secrets\")" ;;
esac

item=python-course-000
if ((SMOKE_LEARNERS > 0)); then
  "${KNOWEDGE_CMD[@]}" demo generate --out "$WORK/demo" --learners "$SMOKE_LEARNERS" --seed "$(date +%s)" >/dev/null ||
    fail "'knowedge demo generate' failed"
  # The batch below is about an item the learner already met in the demo data.
  item=$(jq -r --arg user "$SMOKE_USER" 'select(.user_id == $user and .item_id != null) | .item_id' \
    "$WORK/demo/events.ndjson" | head -n 1)
  [[ -n $item ]] || need_setting "SMOKE_USER=$SMOKE_USER is not one of the $SMOKE_LEARNERS demo learners (learner-0000 …)"
fi

say "posting a batch of 3 events to $INGEST_URL/v1/events"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
jq -n --arg user "$SMOKE_USER" --arg item "$item" --arg ts "$now" \
  --arg e1 "$(uuid)" --arg e2 "$(uuid)" --arg e3 "$(uuid)" \
  '{events: [
     {event_id: $e1, type: "view", user_id: $user, item_id: $item, ts: $ts, session_id: "smoke"},
     {event_id: $e2, type: "click", user_id: $user, item_id: $item, ts: $ts, session_id: "smoke"},
     {event_id: $e3, type: "progress", user_id: $user, item_id: $item, ts: $ts, progress: 0.5, session_id: "smoke"}
   ]}' >"$WORK/batch.json"
code=$(http POST "$INGEST_URL/v1/events" "$WORK/answer.json" \
  -H @"$WORK/ingest.header" -H 'content-type: application/json' --data-binary @"$WORK/batch.json")
case $code in
  200) ;;
  401 | 403) fail "ingestion refused the API key ($code): INGEST_KEY must be a secret listed in the KNOWEDGE_API_KEYS secret with scope events.write" ;;
  000) fail "ingestion at $INGEST_URL did not answer (DNS, TLS or network)" ;;
  *) fail "ingestion answered $code: $(head -c 500 "$WORK/answer.json")" ;;
esac
accepted=$(jq -r '.accepted // 0' "$WORK/answer.json")
[[ $accepted == 3 ]] || fail "ingestion accepted $accepted of 3 events: $(jq -c '.results' "$WORK/answer.json")"
say "ingestion accepted 3 of 3 events"

if ((SMOKE_LEARNERS > 0)); then
  say "sending the events of $SMOKE_LEARNERS demo learners"
  KNOWEDGE_INGEST_KEY=$INGEST_KEY "${KNOWEDGE_CMD[@]}" demo send \
    --events "$WORK/demo/events.ndjson" --to "$INGEST_URL/v1/events" ||
    fail "sending the demo events to ingestion failed (see above)"
  if [[ -n $KNOWEDGE_LAKE ]]; then
    # The lake client reads credentials from AWS_* variables; take them from the AWS CLI's profile.
    if [[ -z ${AWS_ACCESS_KEY_ID:-} ]]; then
      eval "$(aws configure export-credentials --format env)" ||
        fail "could not export AWS credentials for the lake (aws configure export-credentials)"
    fi
    "${KNOWEDGE_CMD[@]}" demo catalogue --file "$WORK/demo/catalogue.json" --lake "$KNOWEDGE_LAKE" >/dev/null ||
      fail "storing the demo catalogue in $KNOWEDGE_LAKE failed"
    say "stored the demo catalogue in $KNOWEDGE_LAKE"
  fi
fi

# --- 2. training ------------------------------------------------------------------------------

expected=""
case $TRAINING_MODE in
  lambda)
    say "invoking $TRAIN_FUNCTION (one training run; a few minutes at most)"
    aws lambda invoke --function-name "$TRAIN_FUNCTION" --payload '{}' \
      --cli-binary-format raw-in-base64-out --cli-read-timeout 0 \
      "$WORK/report.json" >"$WORK/invoke.json" ||
      fail "could not invoke $TRAIN_FUNCTION (name, region, or permission lambda:InvokeFunction)"
    if jq -e '.FunctionError' "$WORK/invoke.json" >/dev/null; then
      fail "the training run failed: $(jq -c '{errorType, errorMessage}' "$WORK/report.json" 2>/dev/null || head -c 500 "$WORK/report.json")"
    fi
    say "training: $(jq -c '{version, recipe, events, users, items, promoted, decision, edges}' "$WORK/report.json")"
    if [[ $(jq -r '.promoted' "$WORK/report.json") == true ]]; then
      expected=$(jq -r '.version' "$WORK/report.json")
    else
      # Not promoted: the champion it was measured against stays `current`.
      expected=$(jq -r '.champion[0] // ""' "$WORK/report.json")
    fi
    ;;
  gpu_batch)
    job_id=$(aws batch submit-job --job-name "knowedge-smoke-$(date -u +%Y%m%dT%H%M%SZ)" \
      --job-queue "$BATCH_JOB_QUEUE" --job-definition "$BATCH_JOB_DEFINITION" \
      --query jobId --output text) ||
      fail "could not submit the training job to $BATCH_JOB_QUEUE"
    say "submitted Batch job $job_id; waiting for it (a GPU instance may take minutes to start)"
    job_start=$SECONDS
    while :; do
      status=$(aws batch describe-jobs --jobs "$job_id" --query 'jobs[0].status' --output text) ||
        fail "could not read the state of Batch job $job_id"
      case $status in
        SUCCEEDED) break ;;
        FAILED)
          reason=$(aws batch describe-jobs --jobs "$job_id" --query 'jobs[0].[statusReason, container.reason, container.exitCode]' --output text || true)
          fail "Batch job $job_id failed: $reason (its log: CloudWatch Logs group /aws/batch/<job definition name>)"
          ;;
        *)
          ((SECONDS - job_start < SMOKE_JOB_TIMEOUT)) ||
            fail "Batch job $job_id is still $status after ${SMOKE_JOB_TIMEOUT}s (RUNNABLE: no GPU capacity in the compute environment; check its instance types, Spot and max vCPUs)"
          sleep 15
          ;;
      esac
    done
    say "Batch job $job_id succeeded"
    ;;
esac

if [[ -n $KNOWEDGE_MODELS ]]; then
  pointer=$(aws s3 cp "${KNOWEDGE_MODELS%/}/current" - 2>/dev/null | tr -d '[:space:]') ||
    fail "could not read ${KNOWEDGE_MODELS%/}/current"
  [[ -n $pointer ]] || fail "the model store ${KNOWEDGE_MODELS%/} has no current model after training"
  [[ -z $expected || $expected == "$pointer" ]] ||
    fail "the training report says $expected is current but the model store's pointer names $pointer"
  expected=$pointer
fi
[[ -n $expected ]] && say "the edge must serve $expected"

# --- 3. the edges pick it up ------------------------------------------------------------------

# Waits until an edge serves the expected version (or, when it is unknown, any model other
# than the one served before). Training pushed the artifact and then the pointer; Workers KV
# reaches every location within about a minute.
wait_for_model() {
  local name=$1 url=$2 start serving
  start=$SECONDS
  while :; do
    serving=$(served_model "$url")
    if [[ -n $expected && $serving == "$expected" ]]; then
      break
    elif [[ -z $expected && -n $serving && $serving != "$before" ]]; then
      expected=$serving
      break
    fi
    if ((SECONDS - start > SMOKE_TIMEOUT)); then
      fail "after ${SMOKE_TIMEOUT}s the $name at $url serves '${serving:-no model}', not '${expected:-a new model}' (set KNOWEDGE_MODELS to name the expected version): see the alarm on EdgePublishFailures and the training log"
    fi
    sleep 5
  done
  say "the $name serves $serving after $((SECONDS - start))s"
}

# --- 4. a personalised answer -----------------------------------------------------------------

check_answer() {
  local name=$1 url=$2 token code query served
  query="user=$SMOKE_USER&k=5"

  code=$(http GET "$url/v1/recommend?$query" "$WORK/answer.json")
  [[ $code == 401 ]] ||
    fail "the $name answered $code to a personalised request without a token; it must answer 401 (KNOWEDGE_TOKEN_KEYS)"

  token=$("${KNOWEDGE_CMD[@]}" keys token --keys "$KNOWEDGE_KEYS" --user "$SMOKE_USER" --ttl 15m) ||
    fail "'knowedge keys token' failed"
  printf 'Authorization: Bearer %s\n' "$token" >"$WORK/token.header"
  code=$(http GET "$url/v1/recommend?$query" "$WORK/answer.json" -H @"$WORK/token.header")
  case $code in
    200) ;;
    401 | 403) fail "the $name refused the learner token ($code $(jq -r '.error // empty' "$WORK/answer.json" 2>/dev/null)): its KNOWEDGE_TOKEN_KEYS must hold token.pub of $KNOWEDGE_KEYS, and KNOWEDGE_TOKEN_AUDIENCE match" ;;
    503) fail "the $name has no valid model: $(head -c 300 "$WORK/answer.json") (is KNOWEDGE_SIGNING_PUBLIC_KEY the public key of the signing key training uses?)" ;;
    *) fail "the $name answered $code: $(head -c 300 "$WORK/answer.json")" ;;
  esac
  jq -e --arg user "$SMOKE_USER" '.user == $user and (.items | length) > 0' "$WORK/answer.json" >/dev/null ||
    fail "the $name's answer is not a personalised one for $SMOKE_USER: $(head -c 300 "$WORK/answer.json")"
  served=$(jq -r '.model_id' "$WORK/answer.json")
  [[ $served == "$expected" ]] || fail "the $name answered from $served, not $expected"
  say "the $name answers $SMOKE_USER from $served: $(jq -c '[.items[].item]' "$WORK/answer.json")"

  # With the demo data, the learner's planted subjects (the item id's first part) should show.
  if [[ -s $WORK/demo/events.ndjson ]]; then
    jq -r --arg user "$SMOKE_USER" 'select(.user_id == $user and .item_id != null) | .item_id | split("-")[0]' \
      "$WORK/demo/events.ndjson" | sort -u >"$WORK/subjects.txt"
    jq -r '.items[].item | split("-")[0]' "$WORK/answer.json" | sort -u >"$WORK/recommended.txt"
    if [[ -n $(comm -12 "$WORK/subjects.txt" "$WORK/recommended.txt") ]]; then
      say "  in the learner's subjects: $(comm -12 "$WORK/subjects.txt" "$WORK/recommended.txt" | paste -sd, -)"
    else
      say "  note: none of the items is in the learner's subjects ($(paste -sd, - <"$WORK/subjects.txt")); the model may need more data"
    fi
  fi
}

wait_for_model Worker "$EDGE_URL"
check_answer Worker "$EDGE_URL"
if [[ -n $SPIN_URL ]]; then
  wait_for_model "Spin app" "$SPIN_URL"
  check_answer "Spin app" "$SPIN_URL"
fi

say "OK: events in, model trained and published, a personalised answer at the edge"
