//! `knowedge audit`: read and verify the lake's audit log
//! ([`knowedge_lake::audit`]).

use anyhow::{Result, bail};
use clap::Subcommand;
use knowedge_lake::{AuditExpectation, Lake};

/// The audit log's commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain: exit 0 with a summary when intact, non-zero with
    /// the first broken record otherwise. Keep the printed head (seq and
    /// digest) outside the lake and pass it later to detect removed records
    /// at the end.
    Verify {
        /// Lake location (directory or s3:// URL).
        #[arg(long)]
        lake: String,
        /// Fail unless the log holds at least this many records.
        #[arg(long)]
        expect_at_least: Option<u64>,
        /// Fail unless a record has this digest (a head printed earlier).
        #[arg(long)]
        expect_digest: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print every record, oldest first.
    List {
        /// Lake location (directory or s3:// URL).
        #[arg(long)]
        lake: String,
        /// Print a JSON array of the records.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an audit command; a broken log is an error (non-zero exit).
pub async fn run(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify { lake, expect_at_least, expect_digest, json } => {
            let expect = AuditExpectation { at_least: expect_at_least, digest: expect_digest };
            let report = Lake::open(&lake)?.audit_verify(&expect).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            match &report.problem {
                None => {
                    if !json {
                        println!(
                            "audit log intact: {} records; head {} {}",
                            report.records, report.head_seq, report.head_digest
                        );
                    }
                    Ok(())
                }
                Some(p) => {
                    let at = p.path.as_deref().map(|p| format!(" ({p})")).unwrap_or_default();
                    bail!(
                        "audit log broken at record {}{at}: {}: {}; {} records before it verify",
                        p.seq,
                        p.kind,
                        p.message,
                        report.records
                    )
                }
            }
        }
        AuditCommand::List { lake, json } => {
            let records = Lake::open(&lake)?.audit_records().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&records)?);
            } else {
                for r in &records {
                    println!(
                        "{:>6}  {}  {:<18} {:<20} {}",
                        r.seq,
                        r.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        r.action,
                        r.key_name,
                        r.details
                    );
                }
            }
            Ok(())
        }
    }
}
