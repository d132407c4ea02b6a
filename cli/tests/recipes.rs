//! Every recipe the project offers (`knowedge train --help`, the README's
//! `KNOWEDGE_RECIPE`, the registry) parses, trains on a lake through the one
//! training pipeline, and exports an artifact the edge's scoring core loads.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeSet;
use std::process::Command;

use knowedge::demo::{self, DemoConfig, ReviewTexts};
use knowedge::keys::Keys;
use knowedge_format::store::Channel;
use knowedge_ingest::Ingest;
use knowedge_lake::{Lake, ModelStore};
use knowedge_scoring::model::{Filters, Model};
use knowedge_train::pipeline::{self, Options};
use knowedge_train::{BprConfig, Recipe};

/// The names `knowedge train --help` offers for `--recipe`.
fn names_in_help() -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_knowedge")).args(["train", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let at = help.find("Recipe:").unwrap_or_else(|| panic!("no recipe list in:\n{help}"));
    let list: String = help[at + "Recipe:".len()..].split("[default").next().unwrap().into();
    list.split([',', '(', ')', ' ', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The names the README's configuration table offers for `KNOWEDGE_RECIPE`.
fn names_in_readme() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(knowedge_test_support::workspace_root().join("README.md")).unwrap();
    let row = readme.lines().find(|l| l.starts_with("| `KNOWEDGE_RECIPE`")).unwrap();
    row.split('`').skip(1).step_by(2).skip(1).map(str::to_owned).collect()
}

#[test]
fn every_offered_name_is_a_registered_recipe_and_every_recipe_is_offered() {
    for (what, names) in [("--help", names_in_help()), ("README", names_in_readme())] {
        let parsed: BTreeSet<Recipe> =
            names.iter().map(|n| n.parse().unwrap_or_else(|e| panic!("{what} offers `{n}`: {e}"))).collect();
        assert_eq!(parsed, Recipe::ALL.into_iter().collect(), "{what} offers {names:?}");
    }
    assert!("nope".parse::<Recipe>().unwrap_err().to_string().contains("timeknn"), "the error lists the recipes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipe_trains_on_the_lake_and_exports_a_served_model() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate().unwrap();
    let data = demo::generate(
        &DemoConfig { seed: 5, learners: 80, items_per_subject: 4, ..DemoConfig::default() },
        &ReviewTexts::default(),
    );
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    lake.put_catalogue(&data.catalogue).await.unwrap();
    let ingest = Ingest::new(lake.clone(), keys.pseudonymizer().unwrap()).with_keys(keys.key_ring().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = knowedge::serve::spawn_ingest(listener, ingest).unwrap();
    knowedge::send_events(&url, &keys.ingest_key, &data.events, 500, |_, _| {}).await.unwrap();

    let models = ModelStore::open(dir.path().join("models").to_str().unwrap()).unwrap();
    let signing = keys.signing().unwrap();
    let public = signing.public_key();
    let bpr = BprConfig { epochs: 3, dims: 8, ..BprConfig::default() };
    for recipe in Recipe::ALL {
        let opts = Options { bpr: bpr.clone(), promote: false, ..Options::new(recipe) };
        let report = pipeline::run(&lake, &models, &signing, &opts).await.unwrap_or_else(|e| panic!("{recipe}: {e:?}"));
        assert_eq!(report.recipe, recipe);
        assert!(report.version.ends_with(recipe.spec().version_tag), "{}", report.version);
        let model = Model::from_artifact(&models.get(&report.version).await.unwrap(), &public).unwrap();
        assert_eq!(model.info().kind, recipe.spec().served_as, "{recipe}");
        assert_eq!(model.recommend(None, 5, &Filters::default()).len(), 5, "{recipe}");
    }
    assert_eq!(models.current(Channel::Recommender).await.unwrap(), None, "nothing promoted");
}
