//! `knowedge privacy`: erasure (GDPR Art. 17, PIPL Art. 47) and export
//! (GDPR Art. 15, PIPL Art. 45) of one learner. The policy lives in
//! `knowedge_lake::privacy`; this module finds the keys, pseudonymises the
//! raw id (which never reaches a file or a log) and prints the outcome.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use knowedge_lake::privacy::{Eraser, ErasureOutcome, UserExport};
use knowedge_lake::{Lake, ModelStore};

use crate::keys::Keys;

/// The privacy commands.
#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Erase a learner from the lake and the served models; prints the signed receipt's path.
    ///
    /// Running the same command again (or `--resume`) finishes an interrupted erasure.
    Erase {
        /// Lake location (directory or s3:// URL).
        #[arg(long)]
        lake: String,
        /// Model store location: the learner also leaves every model stored there.
        #[arg(long)]
        models: Option<String>,
        /// Key directory (the pseudonym key finds the learner, the signing key signs the receipt and models).
        #[arg(long, default_value = ".knowedge/keys")]
        keys: PathBuf,
        /// The learner's raw id (`-`: read it from standard input, keeping it out of the process list).
        #[arg(long, required_unless_present = "resume", conflicts_with = "resume")]
        user: Option<String>,
        /// Finish unfinished jobs instead: this one, or all of them without a value.
        #[arg(long, num_args = 0..=1, default_missing_value = "all")]
        resume: Option<String>,
    },
    /// Export everything the lake holds about a learner as one JSON document.
    Export {
        /// Lake location (directory or s3:// URL).
        #[arg(long)]
        lake: String,
        /// Key directory (the pseudonym key finds the learner).
        #[arg(long, default_value = ".knowedge/keys")]
        keys: PathBuf,
        /// The learner's raw id (`-`: read it from standard input).
        #[arg(long)]
        user: String,
        /// Write the document here (readable by the owner only) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show where an erasure job stands (pending, running, done with its receipt).
    Status {
        /// Lake location (directory or s3:// URL).
        #[arg(long)]
        lake: String,
        /// The job id.
        #[arg(long)]
        job: String,
    },
}

/// Runs a privacy command.
pub async fn run(command: PrivacyCommand) -> Result<()> {
    match command {
        PrivacyCommand::Erase { lake, models, keys, user, resume } => {
            let keys = Keys::load(&keys)?;
            let lake_handle = Lake::open(&lake)?;
            let models = models.as_deref().map(ModelStore::open).transpose()?;
            let outcomes = match (user, resume) {
                (Some(user), _) => vec![erase(&lake_handle, models, &keys, &raw_id(&user)?).await?],
                (None, Some(job)) => resume_jobs(&lake_handle, models, &keys, &job).await?,
                (None, None) => anyhow::bail!("give --user or --resume"),
            };
            for o in &outcomes {
                println!("receipt: {}", shown_path(&lake, &o.receipt_path));
                println!("{}", serde_json::to_string_pretty(o)?);
            }
            if outcomes.is_empty() {
                println!("no unfinished erasure jobs");
            }
            Ok(())
        }
        PrivacyCommand::Export { lake, keys, user, out } => {
            let keys = Keys::load(&keys)?;
            let export = export(&Lake::open(&lake)?, &keys, &raw_id(&user)?).await?;
            let body = serde_json::to_vec_pretty(&export)?;
            match out {
                Some(path) => {
                    write_private(&path, &body)?;
                    eprintln!(
                        "{} events, {} review sentiment rows, {} dead letters written to {}",
                        export.events.len(),
                        export.review_sentiment.len(),
                        export.dead_letters.len(),
                        path.display()
                    );
                }
                None => println!("{}", String::from_utf8_lossy(&body)),
            }
            Ok(())
        }
        PrivacyCommand::Status { lake, job } => {
            let status = Lake::open(&lake)?.erasure_status(&job).await?;
            let status = status.with_context(|| format!("no erasure job {job}"))?;
            println!("{}", serde_json::to_string_pretty(&status)?);
            Ok(())
        }
    }
}

/// The eraser of `lake` with the keys (and models) given.
pub fn eraser(lake: &Lake, models: Option<ModelStore>, keys: &Keys) -> Result<Eraser> {
    anyhow::ensure!(
        !keys.signing_hex.is_empty(),
        "erasure signs its receipt: the signing key (signing.key or KNOWEDGE_SIGNING_KEY) is needed"
    );
    let mut e = Eraser::new(lake.clone(), keys.signing()?).with_pseudonymizer(keys.pseudonymizer()?);
    if let Some(m) = models {
        e = e.with_models(m);
    }
    Ok(e)
}

/// Erases the learner with raw id `user` (or finishes their interrupted erasure).
pub async fn erase(lake: &Lake, models: Option<ModelStore>, keys: &Keys, user: &str) -> Result<ErasureOutcome> {
    let pseudonym = keys.pseudonymizer()?.pseudonymize(user);
    Ok(eraser(lake, models, keys)?.erase(&pseudonym).await?)
}

/// Finishes the unfinished job `job` (`all`: every one).
pub async fn resume_jobs(
    lake: &Lake,
    models: Option<ModelStore>,
    keys: &Keys,
    job: &str,
) -> Result<Vec<ErasureOutcome>> {
    let e = eraser(lake, models, keys)?;
    Ok(if job == "all" { e.run_pending().await? } else { vec![e.run(job).await?] })
}

/// Everything the lake holds about the learner with raw id `user`.
pub async fn export(lake: &Lake, keys: &Keys, user: &str) -> Result<UserExport> {
    let p = keys.pseudonymizer()?;
    let export = lake.export_user(&p.pseudonymize(user), Some(&p)).await?;
    // The audit log names no learner: it says an export happened, by whom, and how much.
    let details = serde_json::json!({"events": export.events.len(), "dead_letters": export.dead_letters.len()});
    lake.audit_append(knowedge_lake::audit::AuditAction::Export, "knowedge-cli", details).await?;
    Ok(export)
}

/// The raw id from the command line, or from standard input for `-`.
fn raw_id(arg: &str) -> Result<String> {
    let id = if arg == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading the learner id from standard input")?;
        s.trim().to_owned()
    } else {
        arg.to_owned()
    };
    anyhow::ensure!(
        !id.is_empty() && id.chars().count() <= 128 && !id.chars().any(char::is_control),
        "a learner id is 1-128 printable characters"
    );
    Ok(id)
}

/// A lake-relative path as a path on this machine when the lake is a directory.
fn shown_path(lake: &str, rel: &str) -> String {
    if lake.contains("://") && !lake.starts_with("file://") {
        format!("{}/{rel}", lake.trim_end_matches('/'))
    } else {
        Path::new(lake.strip_prefix("file://").unwrap_or(lake)).join(rel).display().to_string()
    }
}

/// Writes personal data to a file only its owner can read.
fn write_private(path: &Path, body: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(body).with_context(|| format!("writing {}", path.display()))?;
    f.sync_all().with_context(|| format!("writing {}", path.display()))
}
