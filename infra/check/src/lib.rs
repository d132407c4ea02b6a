//! Holds `infra/` (the Terraform that deploys knowedge) against the code, so
//! the two cannot drift apart: the tests in `tests/infra.rs` parse the
//! Terraform and compare it with what the functions declare
//! (`knowedge_ingest::deploy`, `knowedge_train::deploy`), the lake's tables
//! (`knowedge_lake::tables`) and the Worker's `wrangler.toml`. The crate has
//! no code of its own.
