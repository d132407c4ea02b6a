//! The edge HTTP API, shared by every edge adapter.
//!
//! An adapter (the Spin component, the Cloudflare Worker) parses its
//! platform's request into a [`Request`], loads the current model, calls
//! [`handle`] and writes the [`Response`] back. All parameter checks,
//! filters and JSON shapes live here, so every adapter answers the same.
//!
//! | route | parameters | answer |
//! |---|---|---|
//! | `GET /v1/recommend` | `user` (required), `k` (1-100, default 10), `category`, `max_price`, `exclude` (comma separated) | `{"model_id", "kind", "user", "known_user", "items": [{"item", "score"}]}` |
//! | `GET /v1/similar` | `item` (required), `k` | `{"model_id", "item", "items": [...]}` |
//! | `GET /v1/model` | | the model's [`ModelInfo`] |
//! | `GET /healthz` | | `{"status": "ok", "model_id"}` |
//!
//! Errors are JSON too: `{"error": {"code": "...", "message": "..."}}` with a
//! 4xx status for bad requests and 503 when no valid model is loaded.

use serde::Serialize;
use serde_json::json;

use crate::model::{Filters, Model, ModelInfo, Scored};
use crate::pseudonym::Pseudonymizer;

/// Most items one request may ask for.
pub const MAX_K: usize = 100;
/// Default number of items.
pub const DEFAULT_K: usize = 10;
/// Longest accepted query string, in bytes.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Most ids in `exclude`.
pub const MAX_EXCLUDE: usize = 200;

/// An HTTP request as the adapters see it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Path, without the query string.
    pub path: &'a str,
    /// Raw query string, without `?`.
    pub query: &'a str,
}

/// A JSON answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

impl Response {
    fn json(status: u16, value: &impl Serialize) -> Self {
        let body = serde_json::to_string(value)
            .unwrap_or_else(|_| r#"{"error":{"code":"internal","message":"serialisation failed"}}"#.into());
        Self { status, body }
    }

    /// A JSON error answer.
    pub fn error(status: u16, code: &str, message: impl std::fmt::Display) -> Self {
        Self::json(status, &json!({"error": {"code": code, "message": message.to_string()}}))
    }
}

/// What the adapter knows besides the model.
#[derive(Clone, Debug, Default)]
pub struct EdgeConfig {
    /// Maps request user ids to the pseudonyms models are keyed by.
    pub pseudonymizer: Option<Pseudonymizer>,
}

#[derive(Serialize)]
struct RecommendAnswer<'a> {
    model_id: &'a str,
    kind: &'a str,
    user: &'a str,
    known_user: bool,
    items: Vec<Scored>,
}

#[derive(Serialize)]
struct SimilarAnswer<'a> {
    model_id: &'a str,
    item: &'a str,
    items: Vec<Scored>,
}

/// Answers one request with the current model, or with the reason there is none.
pub fn handle(req: &Request<'_>, model: Result<&Model, &str>, config: &EdgeConfig) -> Response {
    if req.query.len() > MAX_QUERY_BYTES {
        return Response::error(
            414,
            "uri_too_long",
            format!("query string is {} bytes; at most {MAX_QUERY_BYTES} are accepted", req.query.len()),
        );
    }
    let route = match req.path {
        "/v1/recommend" | "/v1/similar" | "/v1/model" | "/healthz" => req.path,
        _ => return Response::error(404, "not_found", format!("no route {}", truncate(req.path))),
    };
    if req.method != "GET" {
        return Response::error(405, "method_not_allowed", format!("{route} answers GET only"));
    }
    if route == "/healthz" {
        return Response::json(
            200,
            &json!({"status": "ok", "model_id": model.ok().map(|m| m.info().model_id.clone())}),
        );
    }
    let model = match model {
        Ok(m) => m,
        Err(reason) => return Response::error(503, "no_model", format!("no valid model is loaded: {reason}")),
    };
    let params = match Params::parse(req.query) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match route {
        "/v1/model" => Response::json(200, model.info() as &ModelInfo),
        "/v1/recommend" => recommend(&params, model, config),
        _ => similar(&params, model),
    }
}

fn recommend(p: &Params, model: &Model, config: &EdgeConfig) -> Response {
    let Some(user) = p.get("user") else {
        return Response::error(400, "missing_parameter", "`user` is required");
    };
    if user.is_empty() || user.chars().count() > crate::event::MAX_ID_CHARS {
        return Response::error(400, "invalid_parameter", "`user` must be 1-128 characters");
    }
    let k = match p.k() {
        Ok(k) => k,
        Err(r) => return r,
    };
    let max_price = match p.get("max_price") {
        None => None,
        Some(s) => match s.parse::<f32>() {
            Ok(x) if x.is_finite() && x >= 0.0 => Some(x),
            _ => return Response::error(400, "invalid_parameter", "`max_price` must be a number ≥ 0"),
        },
    };
    let exclude: Vec<String> = p
        .get("exclude")
        .map(|s| s.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    if exclude.len() > MAX_EXCLUDE {
        return Response::error(400, "invalid_parameter", format!("`exclude` lists more than {MAX_EXCLUDE} items"));
    }
    let Some(pseudonymizer) = &config.pseudonymizer else {
        return Response::error(503, "not_configured", "the edge has no pseudonym key");
    };
    let pseudonym = pseudonymizer.pseudonymize(user);
    let filters = Filters { category: p.get("category").map(str::to_owned), max_price, exclude };
    let items = model.recommend(Some(&pseudonym), k, &filters);
    let info = model.info();
    Response::json(
        200,
        &RecommendAnswer {
            model_id: &info.model_id,
            kind: info.kind.as_str(),
            user,
            known_user: model.knows_user(&pseudonym),
            items,
        },
    )
}

fn similar(p: &Params, model: &Model) -> Response {
    let Some(item) = p.get("item") else {
        return Response::error(400, "missing_parameter", "`item` is required");
    };
    let k = match p.k() {
        Ok(k) => k,
        Err(r) => return r,
    };
    match model.similar(item, k) {
        Some(items) => Response::json(200, &SimilarAnswer { model_id: &model.info().model_id, item, items }),
        None => Response::error(404, "unknown_item", format!("item `{}` is not in the model", truncate(item))),
    }
}

struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Result<Self, Response> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if out.iter().any(|(x, _)| *x == k) {
                return Err(Response::error(400, "duplicate_parameter", format!("`{}` is given twice", truncate(&k))));
            }
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self(out))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn k(&self) -> Result<usize, Response> {
        match self.get("k") {
            None => Ok(DEFAULT_K),
            Some(s) => match s.parse::<usize>() {
                Ok(k) if (1..=MAX_K).contains(&k) => Ok(k),
                _ => {
                    Err(Response::error(400, "invalid_parameter", format!("`k` must be an integer from 1 to {MAX_K}")))
                }
            },
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{ArtifactBuilder, ModelKind, SigningKey};

    fn setup() -> (Model, EdgeConfig) {
        let key = SigningKey::from_seed([9; 32]);
        let p = Pseudonymizer::new(&[5; 32]).unwrap();
        let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
        b.items(vec!["a".into(), "b".into(), "c".into()]).users(vec![p.pseudonymize("alice")]);
        b.popularity(vec![3.0, 2.0, 1.0]);
        b.seen(&[vec![0]]);
        b.manifest_mut().model_id = "m-1".into();
        let bytes = b.sign(&key).unwrap();
        (Model::from_artifact(&bytes, &key.public_key()).unwrap(), EdgeConfig { pseudonymizer: Some(p) })
    }

    fn get(path: &str, query: &str) -> Response {
        let (m, c) = setup();
        handle(&Request { method: "GET", path, query }, Ok(&m), &c)
    }

    fn body(r: &Response) -> serde_json::Value {
        serde_json::from_str(&r.body).unwrap()
    }

    #[test]
    fn recommends_for_a_raw_user_id() {
        let r = get("/v1/recommend", "user=alice&k=5");
        assert_eq!(r.status, 200, "{}", r.body);
        let b = body(&r);
        assert_eq!(b["known_user"], true);
        let items: Vec<&str> = b["items"].as_array().unwrap().iter().map(|i| i["item"].as_str().unwrap()).collect();
        assert_eq!(items, ["b", "c"]);
        assert_eq!(body(&get("/v1/recommend", "user=bob&k=1"))["items"][0]["item"], "a");
    }

    #[test]
    fn bad_requests_get_json_4xx() {
        for (path, query, status) in [
            ("/v1/recommend", "", 400),
            ("/v1/recommend", "user=alice&k=1000000000", 400),
            ("/v1/recommend", "user=alice&k=-1", 400),
            ("/v1/recommend", "user=alice&user=bob", 400),
            ("/v1/recommend", "user=alice&max_price=NaN", 400),
            ("/v1/similar", "item=zzz", 404),
            ("/v1/nothing", "", 404),
        ] {
            let r = get(path, query);
            assert_eq!(r.status, status, "{path}?{query}: {}", r.body);
            assert!(body(&r)["error"]["code"].is_string());
        }
        let long = format!("user={}", "x".repeat(1 << 20));
        assert_eq!(get("/v1/recommend", &long).status, 414);
        let (m, c) = setup();
        assert_eq!(handle(&Request { method: "POST", path: "/v1/model", query: "" }, Ok(&m), &c).status, 405);
        assert_eq!(handle(&Request { method: "GET", path: "/v1/model", query: "" }, Err("none yet"), &c).status, 503);
        let unconfigured = EdgeConfig::default();
        assert_eq!(
            handle(&Request { method: "GET", path: "/v1/recommend", query: "user=a" }, Ok(&m), &unconfigured).status,
            503
        );
    }

    #[test]
    fn model_info() {
        let b = body(&get("/v1/model", ""));
        assert_eq!(b["model_id"], "m-1");
        assert_eq!(b["kind"], "popularity");
        assert_eq!(b["format_version"], 1);
    }
}
