//! `knowedge sql`: SQL on the lake's tables and views.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use knowedge_report::{SqlLake, output};

/// How `knowedge sql` writes its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// A JSON array of objects.
    Json,
    /// A Parquet file (needs --out).
    Parquet,
}

/// Arguments of `knowedge sql`.
#[derive(Args, Debug)]
pub struct SqlArgs {
    /// The lake directory.
    #[arg(long, default_value = ".knowedge/lake")]
    pub lake: PathBuf,
    /// One read-only statement; the tables are events, review_sentiment,
    /// dead_letter, audit and catalogue, the views events_unique and
    /// purchases_cny. Omit it with --file or --tables.
    pub query: Option<String>,
    /// Read the statement from this file instead.
    #[arg(long, conflicts_with = "query")]
    pub file: Option<PathBuf>,
    /// List the tables and views with their columns instead.
    #[arg(long, conflicts_with_all = ["query", "file"])]
    pub tables: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the answer to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `knowedge sql`.
pub async fn run(args: SqlArgs) -> Result<()> {
    let query = match (&args.query, &args.file, args.tables) {
        (Some(q), _, _) => q.clone(),
        (None, Some(f), _) => std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
        (None, None, true) => "SELECT table_name, column_name, data_type FROM information_schema.columns \
             WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
            .to_owned(),
        (None, None, false) => bail!("give a query, --file FILE or --tables"),
    };
    if args.format == Format::Parquet && args.out.is_none() {
        bail!("--format parquet needs --out FILE");
    }
    let lake = SqlLake::open(&args.lake).await?;
    for s in lake.skipped() {
        eprintln!("skipped {} ({}): {}", s.file, s.table, s.reason);
    }
    let answer = lake.query(&query).await?;
    let bytes = match args.format {
        Format::Table => output::table(&answer.schema, &answer.batches)?.into_bytes(),
        Format::Csv => output::csv(&answer.schema, &answer.batches)?,
        Format::Json => serde_json::to_vec_pretty(&output::json_rows(&answer.batches)?)?,
        Format::Parquet => output::parquet(&answer.schema, &answer.batches)?,
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("{} row(s) written to {}", answer.num_rows(), path.display());
        }
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes)?;
            if !bytes.ends_with(b"\n") {
                stdout.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}
