//! `infra/` against the code. Terraform cannot download its providers here,
//! so `terraform validate` cannot run; these checks read the configuration
//! itself (with an HCL parser) and compare it with what the code declares.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use knowedge_lake::deploy::{ObjectAccess, SECRET_SUFFIX, Setting};
use knowedge_lake::tables::{self, FileFormat};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A module's `.tf` files, merged into one JSON document (blocks become
/// nested objects, expressions that are not literals become `${…}` strings).
fn module(name: &str) -> Result<Value> {
    let dir = root().join("infra/modules").join(name);
    let mut merged = Value::Object(Default::default());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let doc: Value = hcl::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        merge(&mut merged, doc);
    }
    Ok(merged)
}

fn module_text(name: &str) -> Result<String> {
    let dir = root().join("infra/modules").join(name);
    let mut text = String::new();
    for entry in std::fs::read_dir(&dir)?.flatten() {
        if entry.path().extension().is_some_and(|e| e == "tf") {
            text.push_str(&std::fs::read_to_string(entry.path())?);
        }
    }
    Ok(text)
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// A block that may be repeated: always a list.
fn blocks(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// The Lambda binaries of the workspace: every binary of a package under `functions/`.
fn lambda_binaries() -> Result<BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root())
        .output()?;
    let meta: Value = serde_json::from_slice(&out.stdout).context("cargo metadata")?;
    let functions = Path::new(meta["workspace_root"].as_str().unwrap_or_default()).join("functions");
    let mut bins = BTreeSet::new();
    for p in meta["packages"].as_array().into_iter().flatten() {
        if Path::new(p["manifest_path"].as_str().unwrap_or_default()).starts_with(&functions) {
            for t in p["targets"].as_array().into_iter().flatten() {
                if t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin")) {
                    bins.insert(t["name"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
    }
    Ok(bins)
}

/// What the code declares for each Lambda binary.
fn declared(binary: &str) -> Option<(&'static [Setting], &'static [ObjectAccess])> {
    Some(match binary {
        "knowedge-ingest" => (knowedge_ingest::deploy::INGEST_SETTINGS, knowedge_ingest::deploy::INGEST_ACCESS),
        "knowedge-compact" => (knowedge_ingest::deploy::COMPACT_SETTINGS, knowedge_ingest::deploy::COMPACT_ACCESS),
        "knowedge-train" => (knowedge_train::deploy::SETTINGS, knowedge_train::deploy::ACCESS),
        "knowedge-report" => (knowedge_report::deploy::SETTINGS, knowedge_report::deploy::ACCESS),
        _ => return None,
    })
}

/// The `lambda_function` module calls of the composition, by their `binary`.
fn function_calls() -> Result<BTreeMap<String, Value>> {
    let composition = module("knowedge")?;
    let mut calls = BTreeMap::new();
    for (name, call) in composition["module"].as_object().context("no module blocks")? {
        if call["source"].as_str().is_some_and(|s| s.trim_end_matches('/').ends_with("lambda_function")) {
            let binary = call["binary"].as_str().with_context(|| format!("module {name} has no literal `binary`"))?;
            calls.insert(binary.to_owned(), call.clone());
        }
    }
    Ok(calls)
}

#[test]
fn every_lambda_binary_is_deployed_from_the_package_xtask_builds() -> Result<()> {
    let binaries = lambda_binaries()?;
    assert_eq!(binaries.len(), 4, "{binaries:?}");
    let calls = function_calls()?;
    assert_eq!(binaries, calls.keys().cloned().collect(), "Lambda binaries vs. functions in infra/modules/knowedge");
    for binary in &binaries {
        assert!(declared(binary).is_some(), "{binary} declares no settings and access (add it to this test)");
    }
    // The function module deploys `target/lambda/<binary>/bootstrap.zip`, where `cargo xtask package` writes it.
    let function = module_text("lambda_function")?;
    assert!(
        function.contains("/target/lambda/${var.binary}/bootstrap.zip"),
        "lambda_function must deploy target/lambda/<binary>/bootstrap.zip"
    );
    let xtask = std::fs::read_to_string(root().join("xtask/src/package.rs"))?;
    assert!(xtask.contains(r#"join("lambda").join(&f.binary).join("bootstrap.zip")"#));
    assert!(function.contains("provided.al2023"), "the functions run on provided.al2023");
    Ok(())
}

#[test]
fn every_setting_a_function_reads_is_provided_and_secrets_are_never_plain() -> Result<()> {
    for (binary, call) in function_calls()? {
        let (settings, _) = declared(&binary).context("undeclared binary")?;
        let plain: BTreeSet<&str> =
            call["environment"].as_object().into_iter().flatten().map(|(k, _)| k.as_str()).collect();
        let secret: BTreeSet<&str> =
            call["secret_environment"].as_object().into_iter().flatten().map(|(k, _)| k.as_str()).collect();
        for s in settings {
            if s.secret {
                assert!(secret.contains(s.name), "{binary}: secret {} is not in secret_environment", s.name);
                assert!(!plain.contains(s.name), "{binary}: secret {} is given as a plain value", s.name);
            } else {
                assert!(plain.contains(s.name), "{binary}: setting {} is not in environment", s.name);
            }
        }
        for name in plain.iter().chain(&secret) {
            assert!(
                settings.iter().any(|s| s.name == *name),
                "{binary}: infra sets {name}, which the code does not read"
            );
        }
    }
    // The function module turns secret_environment into `<NAME>_SECRET` references, which the code reads.
    let function = module_text("lambda_function")?;
    assert!(function.contains(&format!("\"${{name}}{SECRET_SUFFIX}\"")), "secret references are <NAME>{SECRET_SUFFIX}");
    // GPU batch training runs the same binary with the training function's settings.
    let composition = module("knowedge")?;
    let gpu = &composition["module"]["gpu_training"];
    assert_eq!(gpu["environment"], "${module.train.environment}");
    assert_eq!(gpu["secret_environment"], "${module.train.secret_environment}");
    Ok(())
}

/// `(bucket, prefix, IAM action)` triples.
fn triples(access: &[ObjectAccess]) -> BTreeSet<(String, String, String)> {
    access
        .iter()
        .flat_map(|a| a.actions.iter().map(|x| (a.bucket.name().to_owned(), a.prefix.to_owned(), x.iam().to_owned())))
        .collect()
}

#[test]
fn each_role_allows_exactly_the_object_access_its_code_uses() -> Result<()> {
    for (binary, call) in function_calls()? {
        let (_, access) = declared(&binary).context("undeclared binary")?;
        let mut granted = BTreeSet::new();
        for entry in call["object_access"].as_array().context("object_access is not a list")? {
            let (bucket, prefix) = (entry["bucket"].as_str().unwrap_or(""), entry["prefix"].as_str().unwrap_or("?"));
            for action in entry["actions"].as_array().into_iter().flatten() {
                granted.insert((bucket.to_owned(), prefix.to_owned(), action.as_str().unwrap_or("").to_owned()));
            }
        }
        let used = triples(access);
        let covered = |(b, p, a): &(String, String, String), set: &BTreeSet<(String, String, String)>| {
            set.iter().any(|(gb, gp, ga)| gb == b && ga == a && p.starts_with(gp.as_str()))
        };
        for need in &used {
            assert!(covered(need, &granted), "{binary}: its role does not allow {need:?}");
        }
        for grant in &granted {
            assert!(covered(grant, &used), "{binary}: its role allows {grant:?}, which its code does not use");
        }
    }
    // The module grants exactly object_access: object actions on `<bucket>/<prefix>*`, listing by prefix.
    let function = module_text("lambda_function")?;
    assert!(function.contains("var.object_access"));
    assert!(function.contains("s3:prefix"), "listing is limited by prefix");
    Ok(())
}

#[test]
fn glue_tables_are_the_lake_tables_with_their_arrow_columns() -> Result<()> {
    let athena = module("athena")?;
    let glue = athena["resource"]["aws_glue_catalog_table"].as_object().context("no Glue tables")?;
    let by_name: BTreeMap<&str, &Value> = glue.values().map(|t| (t["name"].as_str().unwrap_or_default(), t)).collect();
    let lake = tables::tables();
    assert_eq!(
        lake.iter().map(|t| t.name).collect::<BTreeSet<_>>(),
        by_name.keys().copied().collect::<BTreeSet<_>>(),
        "every lake table has a Glue table and no other"
    );
    for table in lake {
        let t = by_name[table.name];
        let sd = &t["storage_descriptor"];
        let columns: Vec<(String, String)> = blocks(&sd["columns"])
            .iter()
            .map(|c| (c["name"].as_str().unwrap_or("").to_owned(), c["type"].as_str().unwrap_or("").to_owned()))
            .collect();
        let expected: Vec<(String, String)> = table
            .schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), tables::hive_type(f.data_type()).unwrap_or_default()))
            .collect();
        assert_eq!(columns, expected, "Glue columns of {} vs. the Arrow schema the lake writes", table.name);
        let partitions: Vec<(&str, &str)> = blocks(&t["partition_keys"])
            .iter()
            .map(|p| (p["name"].as_str().unwrap_or(""), p["type"].as_str().unwrap_or("")))
            .collect();
        let expected: Vec<(&str, &str)> = table.partitions.iter().map(|p| (*p, "string")).collect();
        assert_eq!(partitions, expected, "partitions of {}", table.name);
        let location = sd["location"].as_str().unwrap_or_default();
        assert!(location.ends_with(&format!("/{}", table.prefix)), "{}: location {location}", table.name);
        let serde = sd["ser_de_info"]["serialization_library"].as_str().unwrap_or_default();
        match table.format {
            FileFormat::Parquet => assert!(serde.contains("parquet"), "{}: {serde}", table.name),
            FileFormat::JsonLines => assert!(serde.to_lowercase().contains("json"), "{}: {serde}", table.name),
        }
        if !table.partitions.is_empty() {
            assert_eq!(t["parameters"]["projection.enabled"], "true", "{}: partition projection", table.name);
            for p in table.partitions {
                assert!(
                    t["parameters"][format!("projection.{p}.type")].is_string(),
                    "{}: projection of {p}",
                    table.name
                );
            }
        }
    }
    Ok(())
}

#[test]
fn event_type_projection_lists_every_event_type() -> Result<()> {
    let athena = module("athena")?;
    let listed = athena["locals"]["event_type"].as_str().context("locals.event_type")?;
    let listed: BTreeSet<&str> = listed.split(',').map(str::trim).collect();
    let types: BTreeSet<&str> = knowedge_format::event::EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(listed, types, "the events table's `type` projection lists every event type");
    Ok(())
}

/// Bindings of the Worker version in the Cloudflare module: `(name, type expression)`.
fn worker_bindings() -> Result<Vec<(String, String)>> {
    let text = module_text("cloudflare_edge")?;
    let start = text.find("resource \"cloudflare_worker_version\"").context("no cloudflare_worker_version")?;
    let body = &text[start..];
    let bindings = &body[body.find("bindings").context("no bindings")?..];
    let end = bindings.find("\n  )").or_else(|| bindings.find("\n  ]")).unwrap_or(bindings.len());
    let mut found = Vec::new();
    let mut name: Option<String> = None;
    for line in bindings[..end].lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("name").map(str::trim).and_then(|r| r.strip_prefix('=')) {
            name = Some(v.trim().trim_matches('"').to_owned());
        } else if let Some(v) = line.strip_prefix("type").map(str::trim).and_then(|r| r.strip_prefix('='))
            && let Some(n) = name.take()
        {
            found.push((n, v.trim().trim_matches('"').to_owned()));
        }
    }
    if found.is_empty() {
        bail!("no bindings found in cloudflare_worker_version");
    }
    Ok(found)
}

#[test]
fn the_worker_has_the_bindings_of_wrangler_toml() -> Result<()> {
    let wrangler_text = std::fs::read_to_string(root().join("edge/worker/wrangler.toml"))?;
    let wrangler: toml::Table = toml::from_str(&wrangler_text)?;
    let bindings = worker_bindings()?;
    let kinds: BTreeMap<&str, &str> = bindings.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();

    // KV namespaces.
    let kv: BTreeSet<&str> = wrangler["kv_namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ns| ns.get("binding").and_then(|b| b.as_str()))
        .collect();
    let tf_kv: BTreeSet<&str> = bindings.iter().filter(|(_, t)| t == "kv_namespace").map(|(n, _)| n.as_str()).collect();
    assert_eq!(kv, tf_kv, "KV namespace bindings");

    // Secrets (`wrangler secret put NAME` in wrangler.toml) are bound as secrets, never plain text.
    let secrets: BTreeSet<&str> = wrangler_text
        .lines()
        .filter_map(|l| l.split("wrangler secret put ").nth(1))
        .filter_map(|r| r.split_whitespace().next())
        .collect();
    assert!(!secrets.is_empty());
    for s in &secrets {
        let kind = kinds.get(s).with_context(|| format!("secret {s} is not bound"))?;
        assert_ne!(*kind, "plain_text", "secret {s} is bound as plain text");
    }

    // Every setting the Worker reads is bound.
    let mut settings: BTreeSet<&str> = knowedge_edge::settings::EDGE_SETTINGS.into_iter().collect();
    settings.extend([knowedge_edge::settings::INGEST_URL_VAR, knowedge_edge::settings::INGEST_KEY_VAR]);
    for s in &settings {
        assert!(kinds.contains_key(s), "the Worker reads {s}, which is not bound");
    }
    for (n, t) in &bindings {
        assert!(settings.contains(n.as_str()) || t == "kv_namespace", "binding {n} is not a Worker setting");
    }

    // Same script entry and compatibility date as wrangler.toml.
    let text = module_text("cloudflare_edge")?;
    let main = wrangler["main"].as_str().unwrap_or_default();
    assert!(text.contains(&format!("\"{}\"", main.trim_start_matches("build/"))), "main module {main}");
    let vars = module("cloudflare_edge")?;
    let date = &vars["variable"]["compatibility_date"]["default"];
    assert_eq!(date.as_str(), wrangler["compatibility_date"].as_str(), "compatibility_date");
    Ok(())
}
