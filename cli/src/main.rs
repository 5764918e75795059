//! The `oauth-lock` command: tokens for shell scripts and cron, store inspection, the strict
//! mock provider every test spawns, and the demo.

mod commands;
mod demo;
mod mirrors;
mod mock_server;
mod probe;
mod sys;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// One correct implementation of OAuth refresh-token rotation, shared by every process.
///
/// Exit codes: 0 ok, 1 other failure, 2 usage; an oauth-lock error exits with 10 + its
/// number: 11 NeedsLogin, 12 InvalidGrant, 13 Terminal, 14 Transient, 15 Busy,
/// 16 Downgrade, 17 Corrupt, 18 UnsupportedFormat, 19 Io, 20 InvalidArgument, 21 Insecure.
#[derive(Parser, Debug)]
#[command(name = "oauth-lock", version, max_term_width = 100)]
struct Cli {
    /// The store: a directory or a postgresql:// URL (put its password in PGPASSWORD, not
    /// here: a command line is visible to every user) [default: $OAUTH_LOCK_STORE, else
    /// $OAUTH_LOCK_DIR, else ~/.local/state/oauth-lock]
    #[arg(long, global = true, value_name = "LOCATION", conflicts_with = "dir")]
    store: Option<PathBuf>,
    /// The store directory (the same as --store DIR)
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Print oauth-lock's decisions (events) on stderr; -vv for more detail
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a valid access token for KEY, refreshing it under the lock if needed
    ///
    /// curl -H "Authorization: Bearer $(oauth-lock token anthropic:work)" …
    Token(commands::TokenArgs),
    /// Show credentials: state, generation, expiry, last rotation (never locks or refreshes)
    Status(commands::StatusArgs),
    /// Store a login: credential JSON on stdin (a token response, plus an optional "refresh" config)
    Save(commands::SaveArgs),
    /// Remove a credential (a logout); other processes see it within a second
    Clear(commands::KeyArg),
    /// Force one refresh to prove the refresh token works (it rotates it)
    Verify(commands::KeyArg),
    /// Refresh KEY if its access token expires within DURATION (for cron keep-alive)
    Refresh(commands::RefreshArgs),
    /// Make a record of Claude Code's or Codex's login and keep their file in step with it
    Import(mirrors::ImportArgs),
    /// Keep credentials fresh ahead of expiry, writing the programs' files back (a user service)
    Keepalive(mirrors::KeepaliveArgs),
    /// Copy credentials between two stores (directories or postgresql:// URLs), as they are
    Copy(commands::CopyArgs),
    /// Run the strict mock OAuth provider on 127.0.0.1 (used by every test)
    MockServer(mock_server::MockOptions),
    /// Show oauth-lock at work: many processes and threads on one credential, 0 replays
    Demo(demo::DemoArgs),
    /// One process of the demo (and of the multi-process tests)
    #[command(hide = true)]
    Worker(demo::WorkerArgs),
    /// One access-token call with the lock counters (tests and benchmarks of the hand-off)
    #[command(hide = true)]
    Probe(probe::ProbeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.verbose > 0 {
        let level = if cli.verbose > 1 {
            "oauth_lock=debug"
        } else {
            "oauth_lock=info"
        };
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
            .with_target(false)
            .init();
    }
    let dir = cli.store.or(cli.dir);
    let result = match cli.command {
        Command::Token(a) => commands::token(dir, a),
        Command::Status(a) => commands::status(dir, a),
        Command::Save(a) => commands::save(dir, a),
        Command::Clear(a) => commands::clear(dir, a),
        Command::Verify(a) => commands::verify(dir, a),
        Command::Refresh(a) => commands::refresh(dir, a),
        Command::Import(a) => mirrors::import(dir, a),
        Command::Keepalive(a) => mirrors::keepalive(dir, a),
        Command::Copy(a) => commands::copy(a),
        Command::MockServer(o) => commands::mock_server(o),
        Command::Demo(a) => demo::demo(a),
        Command::Worker(a) => demo::worker(dir, a),
        Command::Probe(a) => probe::probe(dir, a),
    };
    match result {
        Ok(code) => code,
        Err(commands::Failure::OAuthLock(e)) => {
            eprintln!("oauth-lock: error[{}]: {e}", e.code());
            ExitCode::from(10 + e.code().number())
        }
        Err(commands::Failure::Other(msg)) => {
            eprintln!("oauth-lock: {msg}");
            ExitCode::from(1)
        }
    }
}
