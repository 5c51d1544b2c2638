//! Command-line interface: `serve [--demo]`, `migrate`, `config`, `user`,
//! `org`, `import volunteers`, `export roster|orders|hours`, `backup`,
//! `restore`, `demo simulate`.
//!
//! Exit codes: 0 success; 1 failure (unreadable file, database error ...);
//! 2 usage error (clap), `serve --demo` on a database that already
//! holds organisations or accounts, and `serve` on a SQLite file another
//! `serve` runs on; 3 `import volunteers` rejected some
//! rows (the others were imported, unless `--dry-run`); 4 `import
//! volunteers --all-or-nothing` rejected some rows and imported nothing.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use homefront_domain::{Clock, PhoneNumber, Role, SystemClock};
use homefront_server::config::{Config, LogFormat, Overrides};
use homefront_server::{AppState, auth, exports, roster};
use homefront_store::Store;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::EnvFilter;

/// Homefront: dispatch of volunteer services to frontline workers and their families.
#[derive(Debug, Parser)]
#[command(name = "homefront", version, about)]
pub struct Cli {
    /// Configuration file (TOML). A missing file is fine: defaults apply.
    #[arg(
        long,
        global = true,
        default_value = "homefront.toml",
        env = "HOMEFRONT_CONFIG"
    )]
    config: PathBuf,
    /// Database URL, e.g. sqlite://homefront.db or postgres://user@host/db.
    /// Every command reads it from HOMEFRONT_DATABASE_URL when the flag is
    /// not given (its value is not shown in --help: it may hold a password).
    #[arg(
        long,
        global = true,
        env = "HOMEFRONT_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web application (migrates the database first).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Show configuration.
    Config {
        /// Print the default configuration as TOML.
        #[arg(long)]
        print_default: bool,
    },
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the organisation tree.
    #[command(subcommand)]
    Org(OrgCommand),
    /// The matching engine on its own.
    #[command(subcommand)]
    Dispatch(DispatchCommand),
    /// Purge personal data of orders that ended more than `retention_days`
    /// ago (the server also does this every hour).
    Purge,
    /// Import data from files.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Export data to files.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Write a consistent copy of the SQLite database to FILE while the
    /// server keeps running (VACUUM INTO). For PostgreSQL use pg_dump.
    Backup {
        /// The backup file to create (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Replace the SQLite database with a backup made by `homefront
    /// backup`. Stop the server first; the old file is kept as
    /// FILE.before-restore.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    /// The Jiangsu 2020 programme as a demo.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Load and HTTP benchmarks against a running server.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Drive a running Homefront that holds the demo scenario (start it
    /// with `homefront serve --demo`) over HTTP as its requesters and
    /// volunteers, open loop, then read every acknowledged write back.
    /// Prints achieved rate, latency percentiles (from each operation's
    /// due time), errors, and whether every acknowledged write exists
    /// exactly once. Exit code 1 when that check fails.
    Load(LoadArgs),
    /// Serve an axum hello-world (`GET /`) for the HTTP floor.
    Hello {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081")]
        bind: SocketAddr,
    },
    /// Drive `GET /` of `homefront bench hello` open loop, as `bench load`
    /// drives orders: the HTTP floor, printed with the same JSON keys.
    Floor(FloorArgs),
    /// The dispatcher under a burst: a fresh scenario of M on-duty
    /// volunteers in one province, N orders submitted at once, the real
    /// dispatcher's passes until each has a first offer. Prints the first
    /// offer's delay (p50, p99), the time until all were offered and the
    /// dispatcher's SQL statements per order. On a temporary SQLite file
    /// unless --database-url (which must be empty) names a database.
    Burst(BurstArgs),
}

#[derive(Debug, Args)]
struct BurstArgs {
    /// Orders submitted at once.
    #[arg(long)]
    orders: usize,
    /// On-duty volunteers of the scenario.
    #[arg(long)]
    volunteers: usize,
    /// Print the result as one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    target: String,
    /// `submit` (place orders), `accept` (take offers while orders keep
    /// coming) or `mixed` (both, alternately).
    #[arg(long)]
    scenario: homefront_server::loadgen::Scenario,
    /// Operations per second, or `max` (back to back on every connection).
    #[arg(long)]
    rate: homefront_server::loadgen::Rate,
    /// Seconds during which operations start.
    #[arg(long)]
    duration: u64,
    /// HTTP connections, i.e. operations in flight at most.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Print the result as one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct FloorArgs {
    /// Base URL of `homefront bench hello`.
    #[arg(long)]
    target: String,
    /// Requests per second, or `max`.
    #[arg(long)]
    rate: homefront_server::loadgen::Rate,
    /// Seconds during which requests start.
    #[arg(long)]
    duration: u64,
    /// HTTP connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Print the result as one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum DemoCommand {
    /// Replay the programme over N days through the real application on a
    /// temporary SQLite database (or --database-url / HOMEFRONT_DATABASE_URL,
    /// which must be empty) and print a report computed from the database.
    Simulate {
        /// Days to replay (1 to 366).
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
        /// Random seed: the same seed gives the same report.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Replay the same seed under each dispatch policy, comma-separated
        /// (`broadcast`, `rank-aware`, `sequential`, `auto`), and print the
        /// figures side by side (with --json: one object keyed by policy).
        #[arg(long, value_delimiter = ',')]
        compare: Vec<String>,
        /// With --compare: write the comparison chart (SVG, one panel per
        /// figure with its target) to FILE. On a terminal it is written to
        /// `simulate-compare-seed-N.svg` unless this names another file.
        #[arg(long, value_name = "FILE", requires = "compare")]
        chart: Option<PathBuf>,
        /// Fairness weight of the dispatch cost, km per minute served in
        /// the last 28 days (default 0.03); a finite number, 0 or more.
        #[arg(long, value_parser = fairness_weight_arg, allow_negative_numbers = true)]
        fairness_weight: Option<f64>,
        /// Rank-aware hold, seconds: how long an accept from a
        /// lower-ranked candidate of a broadcast waits while better-ranked
        /// ones are still deciding (default: the configuration's
        /// `broadcast_hold_seconds`, 90).
        #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
        hold_seconds: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Import a volunteer roster (.xlsx or .csv in UTF-8 or GB18030; columns in
    /// docs/roster-template.md). Rows are checked first, then written in one
    /// transaction; re-importing matches volunteers by phone. Exit code 3 when
    /// rows were rejected, 4 when --all-or-nothing imported nothing.
    Volunteers(ImportVolunteersArgs),
}

#[derive(Debug, Args)]
struct ImportVolunteersArgs {
    /// The roster file (.xlsx or .csv); with --template, the file to write.
    file: PathBuf,
    /// Team (org unit id) for rows whose team cell is empty or missing.
    #[arg(long)]
    team: Option<i64>,
    /// Import nothing when any row is rejected.
    #[arg(long)]
    all_or_nothing: bool,
    /// Check every row and report, but write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write the empty template (header row) to FILE instead of importing;
    /// the extension (.xlsx or .csv) chooses the format.
    #[arg(long)]
    template: bool,
    /// Print the whole report (every row) as JSON on standard output.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum ExportCommand {
    /// Write the volunteer roster (Chinese headers, the template's columns
    /// plus read-only ones) to FILE; .xlsx or .csv (UTF-8 with BOM,
    /// formula-safe) by extension.
    Roster {
        /// Output file.
        file: PathBuf,
        /// Only this team (org unit id).
        #[arg(long)]
        team: Option<i64>,
    },
    /// Orders created in the period in an org unit's subtree, as the API's
    /// order list shows them (no address, phone or notes).
    Orders(ExportArgs),
    /// Service hours per volunteer of teams in the subtree, in the period
    /// (phones masked).
    Hours(ExportArgs),
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// Root of the subtree (org unit id).
    #[arg(long)]
    org_unit: i64,
    /// Period start: a date (2020-02-01), an RFC 3339 instant or epoch ms.
    #[arg(long)]
    from: String,
    /// Period end: a date (inclusive), an RFC 3339 instant or epoch ms (exclusive).
    #[arg(long)]
    to: String,
    /// `xlsx` or `csv`; default: from the --out file's extension.
    #[arg(long)]
    format: Option<String>,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// Build the Jiangsu 2020 demo scenario into the (empty) database, print
    /// the demo logins, and keep orders arriving so the board moves.
    #[arg(long)]
    demo: bool,
    /// Serve Prometheus metrics (`GET /metrics`) on this separate address.
    #[arg(long)]
    metrics_bind: Option<SocketAddr>,
    /// Log format: `text` or `json`.
    #[arg(long, value_parser = parse_log_format)]
    log_format: Option<LogFormat>,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("use text or json".into()),
    }
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an admin account (or grant admin to an existing one).
    CreateAdmin {
        /// Phone number, e.g. 13800138000.
        #[arg(long)]
        phone: String,
        /// Display name.
        #[arg(long, default_value = "Admin")]
        name: String,
        /// Read the password from the first line of standard input instead of
        /// generating one (also taken from HOMEFRONT_ADMIN_PASSWORD).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DispatchCommand {
    /// Solve a batch-assignment instance exactly (maximum matches, then
    /// minimum total cost) and print one JSON line
    /// `{"matched": K, "total_cost": X, "solve_ms": T}`; T excludes reading
    /// the file.
    Solve {
        /// CSV with header `request,volunteer,cost` (ids non-negative
        /// integers, cost a non-negative number, e.g. km).
        #[arg(long)]
        instance: PathBuf,
        /// Also write the matches as CSV `request,volunteer,cost`.
        #[arg(long)]
        assignments: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Create a province's province → city → county tree from the shipped
    /// GB/T 2260 division list (idempotent).
    ImportDivisions {
        /// Two-digit province code, e.g. 32 for Jiangsu.
        #[arg(long)]
        province: u8,
    },
}

fn init_tracing() {
    init_tracing_as(LogFormat::Text);
}

fn init_tracing_as(format: LogFormat) {
    let filter = EnvFilter::try_from_env("HOMEFRONT_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        // One JSON object per line, span fields included, for log collectors.
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
}

fn load_config(cli: &Cli, bind: Option<SocketAddr>) -> anyhow::Result<Config> {
    load_config_with(
        cli,
        Overrides {
            bind,
            ..Overrides::default()
        },
    )
}

fn load_config_with(cli: &Cli, mut overrides: Overrides) -> anyhow::Result<Config> {
    overrides.database_url = cli.database_url.clone();
    Config::load(&cli.config, &overrides).map_err(|e| anyhow::anyhow!("configuration: {e}"))
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database at {}",
                homefront_store::redact_url(&config.database_url)
            )
        })?;
    store.migrate().await.context("database migration failed")?;
    Ok(store)
}

/// Runs one command; the exit code is 0 on success, 1 on failure, 2 on
/// usage errors (clap's own).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Config { print_default } => {
            if *print_default {
                print!("{}", Config::default_toml());
            } else {
                let config = load_config(&cli, None)?;
                println!("{config:#?}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            init_tracing();
            let config = load_config(&cli, None)?;
            open_store(&config).await?;
            eprintln!(
                "migrated {}",
                homefront_store::redact_url(&config.database_url)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let config = load_config_with(
                &cli,
                Overrides {
                    bind: args.bind,
                    metrics_bind: args.metrics_bind,
                    log_format: args.log_format,
                    ..Overrides::default()
                },
            )?;
            init_tracing_as(config.log_format);
            serve(config, args.demo).await
        }
        Command::User(UserCommand::CreateAdmin {
            phone,
            name,
            password_stdin,
        }) => {
            let config = load_config(&cli, None)?;
            let store = open_store(&config).await?;
            create_admin(&store, phone, name, *password_stdin).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dispatch(DispatchCommand::Solve {
            instance,
            assignments,
        }) => {
            solve(instance, assignments.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Purge => {
            let config = load_config(&cli, None)?;
            let store = open_store(&config).await?;
            let days = config.retention_days;
            let state = AppState::new(store, Arc::new(SystemClock), config);
            let purged = homefront_server::workers::purge_expired(&state).await?;
            println!(
                "purged personal data of {purged} orders that ended more than {days} days ago"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Org(OrgCommand::ImportDivisions { province }) => {
            let config = load_config(&cli, None)?;
            let store = open_store(&config).await?;
            import_divisions(&store, *province).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(ImportCommand::Volunteers(args)) => {
            if args.template {
                return write_template(&args.file);
            }
            let config = load_config(&cli, None)?;
            let store = open_store(&config).await?;
            import_volunteers(&store, args).await
        }
        Command::Demo(DemoCommand::Simulate {
            days,
            seed,
            json,
            compare,
            chart,
            fairness_weight,
            hold_seconds,
        }) => {
            let filter =
                EnvFilter::try_from_env("HOMEFRONT_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            if !compare.is_empty() {
                return simulate_compare(
                    *days,
                    *seed,
                    *json,
                    compare,
                    *fairness_weight,
                    *hold_seconds,
                    chart.as_deref(),
                )
                .await;
            }
            simulate(
                cli.database_url.clone(),
                *days,
                *seed,
                *json,
                *fairness_weight,
                *hold_seconds,
            )
            .await
        }
        Command::Bench(BenchCommand::Load(args)) => {
            let opts = homefront_server::loadgen::LoadOptions {
                target: args.target.clone(),
                scenario: args.scenario,
                rate: args.rate,
                duration: std::time::Duration::from_secs(args.duration),
                connections: args.connections,
            };
            bench_load(&opts, args.json).await
        }
        Command::Bench(BenchCommand::Floor(args)) => {
            let opts = homefront_server::loadgen::LoadOptions {
                target: args.target.clone(),
                scenario: homefront_server::loadgen::Scenario::Hello,
                rate: args.rate,
                duration: std::time::Duration::from_secs(args.duration),
                connections: args.connections,
            };
            bench_load(&opts, args.json).await
        }
        Command::Bench(BenchCommand::Burst(args)) => {
            let filter =
                EnvFilter::try_from_env("HOMEFRONT_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            bench_burst(cli.database_url.clone(), args).await
        }
        Command::Bench(BenchCommand::Hello { bind }) => {
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen on {bind}"))?;
            eprintln!("hello-world on http://{}", listener.local_addr()?);
            tokio::select! {
                r = homefront_server::loadgen::serve_hello(listener) => r?,
                () = shutdown_signal() => {}
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(ExportCommand::Roster { file, team }) => {
            let config = load_config(&cli, None)?;
            let store = open_store(&config).await?;
            export_roster(&store, file, *team).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(ExportCommand::Orders(args)) => {
            let config = load_config(&cli, None)?;
            let store = open_store(&config).await?;
            export_report(&store, args, true).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(ExportCommand::Hours(args)) => {
            let config = load_config(&cli, None)?;
            let store = open_store(&config).await?;
            export_report(&store, args, false).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { out } => {
            let config = load_config(&cli, None)?;
            let store = open_store(&config).await?;
            store
                .backup_to(out)
                .await
                .with_context(|| format!("backup to {} failed", out.display()))?;
            eprintln!(
                "backed up {} orders to {}",
                store.count_orders().await?,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore { file } => {
            let config = load_config(&cli, None)?;
            let orders = Store::restore_sqlite(file, &config.database_url)
                .await
                .with_context(|| format!("restore from {} failed", file.display()))?;
            // Bring the restored file up to this version's schema.
            open_store(&config).await?;
            eprintln!(
                "restored {} ({orders} orders) from {}",
                homefront_store::redact_url(&config.database_url),
                file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn format_of(file: &std::path::Path) -> anyhow::Result<roster::Format> {
    file.extension()
        .and_then(|e| e.to_str())
        .and_then(roster::Format::parse)
        .with_context(|| format!("{}: use a .xlsx or .csv file name", file.display()))
}

fn write_template(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let format = format_of(file)?;
    let bytes = roster::template(format).map_err(anyhow::Error::msg)?;
    std::fs::write(file, bytes).with_context(|| format!("cannot write {}", file.display()))?;
    eprintln!("wrote the roster template to {}", file.display());
    Ok(ExitCode::SUCCESS)
}

async fn import_volunteers(store: &Store, args: &ImportVolunteersArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let format = args
        .file
        .extension()
        .and_then(|e| e.to_str())
        .and_then(roster::Format::parse)
        .unwrap_or_else(|| roster::Format::sniff(&bytes));
    if let Some(team) = args.team {
        match store.org_unit(team).await? {
            Some(u) if u.kind == homefront_domain::org::OrgKind::Team => {}
            Some(u) => bail!(
                "--team {team} is a {}, not a team; give a team's org unit id",
                u.kind
            ),
            None => bail!("--team {team}: no org unit with this id"),
        }
    }
    let bar = progress_bar();
    bar.set_message(format!("importing {}", args.file.display()));
    let options = roster::ImportOptions {
        default_team: args.team.map(homefront_store::roster::TeamRef::Id),
        all_or_nothing: args.all_or_nothing,
        dry_run: args.dry_run,
        scopes: None,
        actor: None,
    };
    let report = roster::import(
        store,
        &bytes,
        format,
        &options,
        SystemClock.now(),
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    for row in report.rejected_rows() {
        if let homefront_store::roster::RowOutcome::Rejected { errors } = &row.outcome {
            for e in errors {
                eprintln!("row {}: {}: {}", row.row, e.field, e.message);
            }
        }
    }
    let verb = if report.committed {
        "imported"
    } else {
        "checked (nothing written)"
    };
    eprintln!(
        "{verb} {}: {} rows, {} created, {} updated, {} unchanged, {} rejected",
        args.file.display(),
        report.rows_read,
        report.created,
        report.updated,
        report.unchanged,
        report.rejected
    );
    if report.created > 0 && report.committed {
        eprintln!(
            "new accounts have no usable password: an admin sets one (password reset) before a volunteer can sign in"
        );
    }
    Ok(match (report.rejected, args.all_or_nothing) {
        (0, _) => ExitCode::SUCCESS,
        (_, false) => ExitCode::from(3),
        (_, true) => ExitCode::from(4),
    })
}

async fn export_roster(
    store: &Store,
    file: &std::path::Path,
    team: Option<i64>,
) -> anyhow::Result<()> {
    let format = format_of(file)?;
    let filter = homefront_store::volunteers::VolunteerFilter {
        team_id: team,
        ..Default::default()
    };
    let (bytes, count) = roster::export_roster(store, &filter, format, SystemClock.now())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(file, bytes).with_context(|| format!("cannot write {}", file.display()))?;
    eprintln!("wrote {count} volunteers to {}", file.display());
    Ok(())
}

async fn export_report(store: &Store, args: &ExportArgs, orders: bool) -> anyhow::Result<()> {
    let format = match &args.format {
        Some(f) => {
            roster::Format::parse(f).with_context(|| format!("--format {f}: use xlsx or csv"))?
        }
        None => format_of(&args.out)?,
    };
    let unit = store
        .org_unit(args.org_unit)
        .await?
        .with_context(|| format!("--org-unit {}: no org unit with this id", args.org_unit))?;
    let (from, to) = homefront_server::api::reports::period(&unit, &args.from, &args.to)
        .map_err(|e| anyhow::anyhow!("{}: {}", e.field.unwrap_or_default(), e.message))?;
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let out = std::io::BufWriter::new(file);
    let bar = progress_bar();
    let (written, what) = if orders {
        // The API's list filter with the unit's subtree as the scope and
        // no row limit, read from one snapshot and written row by row.
        let filter = homefront_store::orders::OrderFilter {
            scopes: Some(vec![unit.path.clone()]),
            created_from: Some(from),
            created_to: Some(to),
            ..Default::default()
        };
        let mut snapshot = store.order_snapshot(&filter).await?;
        bar.set_message("orders");
        bar.set_length(u64::try_from(snapshot.count).unwrap_or(0));
        let mut w =
            exports::SheetWriter::new(format, exports::ORDERS, out).map_err(anyhow::Error::msg)?;
        let mut rows = snapshot.rows();
        while let Some(row) = futures::StreamExt::next(&mut rows).await {
            w.row(&exports::order_cells(&row?))
                .map_err(anyhow::Error::msg)?;
            bar.inc(1);
        }
        let (mut out, n) = w.finish().map_err(anyhow::Error::msg)?;
        std::io::Write::flush(&mut out)?;
        (n, "orders")
    } else {
        let scope = homefront_store::figures::ReportScope {
            path: unit.path.clone(),
            from_ms: from,
            to_ms: to,
        };
        let rows = homefront_server::api::reports::volunteer_hours(store, &scope).await?;
        let mut w =
            exports::SheetWriter::new(format, exports::HOURS, out).map_err(anyhow::Error::msg)?;
        for r in &rows {
            w.row(&exports::hours_cells(r))
                .map_err(anyhow::Error::msg)?;
        }
        let (mut out, n) = w.finish().map_err(anyhow::Error::msg)?;
        std::io::Write::flush(&mut out)?;
        (n, "volunteers")
    };
    bar.finish_and_clear();
    eprintln!(
        "wrote {written} {what} of {} to {}",
        unit.name,
        args.out.display()
    );
    Ok(())
}

async fn bench_load(
    opts: &homefront_server::loadgen::LoadOptions,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(opts.duration.as_secs().max(1))
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let shown = bar.clone();
    let report = homefront_server::loadgen::run(opts, move |p| {
        shown.set_position(p.elapsed_s as u64);
        shown.set_message(format!(
            "{} acknowledged, {} failed",
            p.acknowledged, p.failed
        ));
    })
    .await?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{:.1}/s acknowledged ({} in all); latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            report.achieved_per_s, report.acknowledged, report.p50_ms, report.p99_ms, report.max_ms
        );
        for (kind, n) in &report.errors {
            println!("errors {kind}: {n}");
        }
        println!(
            "every acknowledged write read back exactly once: {}",
            if report.verified_exactly_once {
                "yes"
            } else {
                "NO"
            }
        );
    }
    Ok(if report.verified_exactly_once {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn bench_burst(database_url: Option<String>, args: &BurstArgs) -> anyhow::Result<ExitCode> {
    // A temporary SQLite file unless a database is named; removed after.
    let temp = match &database_url {
        Some(_) => None,
        None => {
            let dir = std::env::temp_dir().join(format!(
                "homefront-burst-{}-{}",
                std::process::id(),
                SystemClock.now().epoch_ms()
            ));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Some(dir)
        }
    };
    let url = match (&database_url, &temp) {
        (Some(url), _) => url.clone(),
        (None, Some(dir)) => format!("sqlite://{}", dir.join("burst.db").display()),
        (None, None) => unreachable!("a temporary directory without a URL"),
    };
    let store = Store::connect(&url).await.with_context(|| {
        format!(
            "cannot open the database at {}",
            homefront_store::redact_url(&url)
        )
    })?;
    store.migrate().await.context("database migration failed")?;
    let bar = progress_bar();
    let (orders, volunteers) = (args.orders as u64, args.volunteers as u64);
    let shown = bar.clone();
    let result = homefront_server::burst::run(&store, args.orders, args.volunteers, move |stage| {
        use homefront_server::burst::Stage;
        let (msg, len, pos) = match stage {
            Stage::Volunteers(n) => ("volunteers", volunteers, n),
            Stage::Orders(n) => ("orders submitted", orders, n),
            Stage::Offered(n) => ("orders offered", orders, n),
        };
        shown.set_message(msg);
        shown.set_length(len);
        shown.set_position(pos as u64);
    })
    .await;
    bar.finish_and_clear();
    store.close().await;
    if let Some(dir) = temp {
        std::fs::remove_dir_all(dir).ok();
    }
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} orders: first offer p50 {:.2} s, p99 {:.2} s; all offered after {:.2} s; \
             {:.1} statements per order",
            report.orders,
            report.first_offer_p50_s,
            report.first_offer_p99_s,
            report.all_offered_s,
            report.statements_per_order
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on standard error when it is a terminal; hidden when piped.
fn progress_bar() -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The SQLite database file a `sqlite:` URL names (`None` for another
/// engine or an in-memory database).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// Takes the exclusive lock file `<db>.serve-lock` beside a SQLite
/// database, held for the life of the returned file. `Ok(None)` when
/// another process holds it: SQLite runs one instance, because the
/// dispatcher and the fulfilment worker must run once per database and
/// SQLite has no lock that outlives a crashed process as PostgreSQL's
/// advisory lock does (the operating system's file lock does: it goes
/// with the process).
fn lock_sqlite(db: &std::path::Path) -> anyhow::Result<Option<std::fs::File>> {
    let mut name = db.as_os_str().to_owned();
    name.push(".serve-lock");
    let lock_path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open the lock file {}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
        }
    }
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<ExitCode> {
    // Held until `serve` returns.
    let _serve_lock = match sqlite_file(&config.database_url) {
        Some(db) => match lock_sqlite(&db)? {
            Some(lock) => Some(lock),
            None => {
                eprintln!(
                    "error: another `homefront serve` already runs on {}; SQLite runs one \
                     instance per database file (several instances need PostgreSQL)",
                    db.display()
                );
                return Ok(ExitCode::from(2));
            }
        },
        None => None,
    };
    let store = open_store(&config).await?;
    if demo && (store.count_users().await? > 0 || store.count_org_units().await? > 0) {
        eprintln!(
            "error: --demo builds its scenario into an empty database, but {} already holds \
             organisations or accounts; point --database-url at a new file \
             (e.g. --database-url sqlite://demo.db) or remove the old one",
            homefront_store::redact_url(&config.database_url)
        );
        return Ok(ExitCode::from(2));
    }
    let scenario = if demo {
        eprintln!("building the demo scenario (Jiangsu, February 2020) ...");
        let hash = auth::hash_password(homefront_server::demo::DEMO_PASSWORD.to_string())
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let seed = SystemClock.now().epoch_ms().unsigned_abs();
        Some(homefront_server::demo::scenario::build(&store, SystemClock.now(), &hash, seed).await?)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = store.backend().as_str(), "Homefront is serving");
    eprintln!("Homefront is serving on http://{addr}");
    let metrics = match config.metrics_bind {
        Some(addr) => {
            let handle = homefront_server::metrics::install();
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for metrics on {addr}"))?;
            tracing::info!(%addr, "serving metrics on /metrics");
            let store = store.clone();
            Some(tokio::spawn(async move {
                if let Err(e) = homefront_server::metrics::serve(listener, handle, store).await {
                    tracing::error!(error = %e, "metrics listener stopped");
                }
            }))
        }
        None => None,
    };
    let state = AppState::new(store.clone(), Arc::new(SystemClock), config);
    let mut workers = vec![
        homefront_server::workers::spawn_retention(state.clone()),
        // Drains the notification outbox (inbox, group bots, webhooks).
        homefront_server::notify::spawn_delivery(state.clone()),
        // The dispatcher and the fulfilment worker run on one instance of
        // a PostgreSQL database at a time (the elected leader).
        homefront_server::leader::spawn(state.clone(), |state| {
            vec![
                homefront_server::workers::spawn_fulfilment(state.clone()),
                homefront_server::dispatcher::spawn(
                    state.clone(),
                    std::time::Duration::from_secs(state.config.dispatch_interval_seconds.max(1)),
                ),
            ]
        }),
    ];
    if let Some(scenario) = scenario {
        print_demo_logins(&scenario, addr);
        let seed = SystemClock.now().epoch_ms().unsigned_abs();
        workers.push(
            homefront_server::demo::simulate::spawn_live(
                state.clone(),
                format!("http://{addr}"),
                scenario,
                seed,
            )
            .await?,
        );
    }
    homefront_server::serve(listener, state, shutdown_signal()).await?;
    for w in workers.into_iter().chain(metrics) {
        w.abort();
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

fn print_demo_logins(scenario: &homefront_server::demo::Scenario, addr: SocketAddr) {
    let host = if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    println!();
    println!("Homefront demo: http://{host}  (all data below is synthetic)");
    println!(
        "{} volunteers, {} households; every demo account's password is \"{}\" (a demo, printed on purpose)",
        scenario.volunteers.len(),
        scenario.households.len(),
        homefront_server::demo::DEMO_PASSWORD
    );
    println!();
    println!("  {:<46} {:<13} what to look at", "role", "phone");
    for l in &scenario.logins {
        println!("  {:<46} {:<13} {}", l.role, l.phone, l.note);
    }
    println!();
    println!(
        "sign in: curl -s -X POST http://{host}/api/v1/auth/login -H 'content-type: application/json' \\\n    -d '{{\"phone\":\"13800000001\",\"password\":\"{}\"}}'",
        homefront_server::demo::DEMO_PASSWORD
    );
    println!(
        "the board: GET /api/v1/orders (coordinator), GET /api/v1/dispatch/queue; a new order every 20-60 s"
    );
    println!();
}

/// `demo simulate --compare`: the same seed under each policy, side by side.
async fn simulate_compare(
    days: u32,
    seed: u64,
    json: bool,
    policies: &[String],
    fairness_weight: Option<f64>,
    hold_seconds: Option<u64>,
    chart: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    use homefront_server::demo::Policy;
    let mut parsed = Vec::new();
    for p in policies {
        let Some(policy) = Policy::parse(p.trim()) else {
            anyhow::bail!(
                "--compare: unknown policy {p:?}; use broadcast, rank-aware, sequential or auto"
            );
        };
        if parsed.contains(&policy) {
            anyhow::bail!("--compare: {} is named twice", policy.name());
        }
        parsed.push(policy);
    }
    if let Some(path) = chart {
        // Fail before minutes of replay, not after.
        std::fs::write(path, "")
            .with_context(|| format!("--chart: cannot write {}", path.display()))?;
    }
    let mut reports = Vec::new();
    for policy in parsed {
        let bar = progress_bar();
        bar.set_message(format!(
            "simulating {} (seed {seed}, {})",
            days_text(days),
            policy.name()
        ));
        let opts = homefront_server::demo::SimOptions {
            days,
            seed,
            database_url: None,
            policy: Some(policy),
            fairness_weight,
            hold_seconds,
        };
        let report = homefront_server::demo::simulate(&opts, |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await?;
        bar.finish_and_clear();
        reports.push((policy.name(), report));
    }
    let default_chart = PathBuf::from(format!("simulate-compare-seed-{seed}.svg"));
    let chart = chart.or_else(|| {
        std::io::stdout()
            .is_terminal()
            .then_some(default_chart.as_path())
    });
    if let Some(path) = chart {
        let runs: Vec<(&str, &homefront_server::demo::Report)> =
            reports.iter().map(|(p, r)| (*p, r)).collect();
        let svg = homefront_server::demo::compare_svg(
            &format!("Homefront replay: {days} days, seed {seed}, by dispatch policy"),
            &runs,
        )
        .map_err(|e| anyhow::anyhow!("drawing the comparison chart: {e}"))?;
        std::fs::write(path, svg)
            .with_context(|| format!("writing the chart to {}", path.display()))?;
        eprintln!("chart: {}", path.display());
    }
    if json {
        let map: serde_json::Map<String, serde_json::Value> = reports
            .iter()
            .map(|(p, r)| Ok(((*p).to_string(), serde_json::to_value(r)?)))
            .collect::<Result<_, serde_json::Error>>()?;
        println!("{}", serde_json::Value::Object(map));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Homefront demo: {} (seed {seed}), one run per policy",
        days_text(days)
    );
    println!(
        "{:<11} {:>7} {:>11} {:>9} {:>13} {:>10} {:>12} {:>6}",
        "policy",
        "placed",
        "unfulfilled",
        "1st<1s",
        "priority p90",
        "travel km",
        "hindsight km",
        "gini"
    );
    for (p, r) in &reports {
        println!(
            "{:<11} {:>7} {:>11} {:>9.3} {:>13} {:>10.1} {:>12.1} {:>6.3}",
            p,
            r.orders_placed,
            r.orders_unfulfilled,
            r.first_offer_within_1s_share,
            r.accept_p90_s_by_lane
                .get("priority")
                .map_or_else(|| "–".to_string(), |s| format!("{s:.0}")),
            r.travel_km,
            r.travel_hindsight_optimum_km,
            r.hours_gini
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn simulate(
    database_url: Option<String>,
    days: u32,
    seed: u64,
    json: bool,
    fairness_weight: Option<f64>,
    hold_seconds: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let bar = progress_bar();
    bar.set_message(format!("simulating {} (seed {seed})", days_text(days)));
    let opts = homefront_server::demo::SimOptions {
        days,
        seed,
        database_url,
        policy: None,
        fairness_weight,
        hold_seconds,
    };
    let started = std::time::Instant::now();
    let report = homefront_server::demo::simulate(&opts, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report, days, seed);
    }
    eprintln!(
        "simulated {} in {:.1} s",
        days_text(days),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// "1 day", "14 days".
fn days_text(days: u32) -> String {
    if days == 1 {
        "1 day".to_string()
    } else {
        format!("{days} days")
    }
}

/// `--fairness-weight`: a finite number of km per minute, at least 0.
fn fairness_weight_arg(s: &str) -> Result<f64, String> {
    let w: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number; give km per minute served, e.g. 0.03"))?;
    if w.is_finite() && w >= 0.0 {
        Ok(w)
    } else {
        Err(format!(
            "{s} is not a weight; give a finite number of km per minute served, 0 or more (default 0.03)"
        ))
    }
}

fn print_report(r: &homefront_server::demo::Report, days: u32, seed: u64) {
    println!(
        "Homefront demo: {} of the Jiangsu programme (seed {seed}), from the database",
        days_text(days)
    );
    println!(
        "volunteers: {} vetted, {} active",
        r.volunteers_vetted, r.volunteers_active
    );
    println!(
        "orders: {} placed, {} completed, {} cancelled, {} unfulfilled, {} open",
        r.orders_placed,
        r.orders_completed,
        r.orders_cancelled,
        r.orders_unfulfilled,
        r.orders_open
    );
    println!("service hours: {}", r.service_hours);
    println!(
        "time to accept: p50 {:.0} s, p90 {:.0} s",
        r.accept_p50_s, r.accept_p90_s
    );
    for (lane, t) in &r.accept_by_lane {
        println!(
            "  {lane:<9} {:>4} accepted, p50 {:>6.0} s, p90 {:>6.0} s",
            t.accepted, t.p50_s, t.p90_s
        );
    }
    println!("escalations: {}", r.escalations);
    println!(
        "served by paired volunteers: {} of {} ({:.1} %)",
        r.served_by_paired,
        r.orders_completed,
        r.paired_share * 100.0
    );
    let over = if r.travel_hindsight_optimum_km > 0.0 {
        format!(
            " ({:+.1} %)",
            (r.travel_km / r.travel_hindsight_optimum_km - 1.0) * 100.0
        )
    } else {
        String::new()
    };
    println!(
        "travel: {} km for {} accepted on-site orders; hindsight lower bound (each by the nearest volunteer who would have accepted): {} km{over}",
        r.travel_km, r.travel.orders, r.travel_hindsight_optimum_km
    );
    let causes: Vec<String> = r
        .unfulfilled_by_cause
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!(
        "unfulfilled by cause: {}; while a volunteer who would have accepted was reachable: {}",
        causes.join(", "),
        r.unfulfilled_while_reachable
    );
    println!(
        "first offer within 1 s: {:.3} of the orders that had a candidate; hours Gini: {:.3}",
        r.first_offer_within_1s_share, r.hours_gini
    );
    println!("by item (placed / completed / cancelled / unfulfilled / open):");
    for (k, o) in &r.by_item {
        println!(
            "  {k:<18} {:>4} {:>4} {:>4} {:>4} {:>4}",
            o.placed, o.completed, o.cancelled, o.unfulfilled, o.open
        );
    }
    println!("by city:");
    for (k, o) in &r.by_city {
        println!(
            "  {k:<18} {:>4} {:>4} {:>4} {:>4} {:>4}",
            o.placed, o.completed, o.cancelled, o.unfulfilled, o.open
        );
    }
    println!("teams (active volunteers / orders served / hours):");
    for (k, t) in &r.teams {
        println!(
            "  {k:<40} {:>4} {:>4} {:>7}",
            t.volunteers_active, t.orders_served, t.service_hours
        );
    }
    println!(
        "provincial team vs the press report (46 volunteers, 69 orders, 130+ h): {} volunteers, {} orders, {} h",
        r.provincial_team.volunteers_active,
        r.provincial_team.orders_served,
        r.provincial_team.service_hours
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn create_admin(
    store: &Store,
    phone: &str,
    name: &str,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let phone = PhoneNumber::parse(phone).map_err(|e| anyhow::anyhow!("--phone: {e}"))?;
    let now = SystemClock.now().epoch_ms();
    if let Some(user) = store.user_by_phone(&phone).await? {
        store.grant_role(user.id, Role::Admin, None, now).await?;
        eprintln!("{phone} already had an account; it is now an admin (password unchanged)");
        return Ok(());
    }
    let (password, generated) = if let Ok(p) = std::env::var("HOMEFRONT_ADMIN_PASSWORD") {
        (p, false)
    } else if password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        (line.trim_end_matches(['\r', '\n']).to_string(), false)
    } else {
        (auth::new_token()[..16].to_string(), true)
    };
    if let Err(e) = auth::check_password_strength(
        "password",
        &password,
        &auth::personal_inputs(phone.as_str(), name),
    ) {
        bail!("{}", e.message);
    }
    let hash = auth::hash_password(password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let user = store
        .create_user(
            &phone,
            name,
            &hash,
            homefront_domain::locale::Locale::ZhCn,
            now,
        )
        .await?;
    store.grant_role(user.id, Role::Admin, None, now).await?;
    if generated {
        println!("created admin {phone} with password: {password}");
        eprintln!("store it now; it is not shown again");
    } else {
        println!("created admin {phone}");
    }
    Ok(())
}

async fn import_divisions(store: &Store, province: u8) -> anyhow::Result<()> {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("importing divisions of province {province:02}"));
    let summary = store
        .import_divisions(province, SystemClock.now().epoch_ms(), |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .await?;
    bar.finish_and_clear();
    if summary.created + summary.existing == 0 {
        bail!(
            "no divisions with coordinates for province code {province:02}; use e.g. 32 for Jiangsu"
        );
    }
    println!(
        "province {province:02}: {} org units created, {} already present; {} org units in all",
        summary.created,
        summary.existing,
        store.count_org_units().await?
    );
    Ok(())
}

fn solve(instance: &std::path::Path, assignments: Option<&std::path::Path>) -> anyhow::Result<()> {
    let file = std::fs::File::open(instance)
        .with_context(|| format!("cannot open {}", instance.display()))?;
    let edges = homefront_dispatch::read_instance(std::io::BufReader::new(file))
        .with_context(|| format!("{} is not a valid instance", instance.display()))?;
    let started = std::time::Instant::now();
    let solution = homefront_dispatch::solve_instance(&edges);
    let solve_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Keys in the documented order: {"matched", "total_cost", "solve_ms"}.
    println!(
        r#"{{"matched": {}, "total_cost": {:.9}, "solve_ms": {:.3}}}"#,
        solution.matched, solution.total_cost, solve_ms
    );
    if let Some(path) = assignments {
        let out = std::fs::File::create(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        homefront_dispatch::write_assignments(std::io::BufWriter::new(out), &solution.assignments)?;
    }
    Ok(())
}
