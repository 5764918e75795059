//! The commands for programs that keep their own credential file (DESIGN.md §6.1): `import`
//! makes a record of Claude Code's or Codex's login, `keepalive` keeps it fresh so that those
//! programs never refresh (and race) themselves.

use crate::commands::{expiry_note, open, Failure, Outcome};
use oauth_lock::{ImportOptions, Keepalive, KeepaliveAction, KeepaliveOptions, MirrorShape};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The program whose login to import: claude-code or codex
    #[arg(value_parser = ["claude-code", "codex"])]
    pub program: String,
    /// The key to store it under [default: the program's name]
    #[arg(long)]
    pub key: Option<String>,
    /// The program's credentials file [default: $CLAUDE_CONFIG_DIR/.credentials.json or
    /// ~/.claude/.credentials.json; $CODEX_HOME/auth.json or ~/.codex/auth.json]
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Refresh at this token URL instead of the program's own (e.g. a test provider)
    #[arg(long, value_name = "URL")]
    pub token_url: Option<String>,
}

pub fn import(dir: Option<PathBuf>, a: ImportArgs) -> Outcome {
    let program: MirrorShape = a.program.parse()?;
    let status = open(dir)?.import_blocking(
        program,
        ImportOptions {
            key: a.key,
            file: a.file,
            token_url: a.token_url,
        },
    )?;
    eprintln!(
        "{:?}: imported {}'s login from {} (generation {}{}); the file is kept in step",
        status.key,
        program.program(),
        status
            .mirror_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        status.generation.unwrap_or(0),
        expiry_note(status.expires_at_ms),
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct KeepaliveArgs {
    /// The credentials to keep fresh [default: every one in the store]
    pub keys: Vec<String>,
    /// Refresh when the access token expires within this (capped at half its lifetime)
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = humantime::parse_duration)]
    pub ahead: Duration,
    /// One pass, then exit (for cron); exits non-zero if a credential could not be refreshed
    #[arg(long)]
    pub once: bool,
    /// Longest sleep between passes (to notice re-logins and the programs' own rotations)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub check_every: Duration,
}

pub fn keepalive(dir: Option<PathBuf>, a: KeepaliveArgs) -> Outcome {
    let store = open(dir)?;
    let options = KeepaliveOptions {
        ahead: a.ahead,
        check_every: a.check_every,
        ..KeepaliveOptions::default()
    };
    let mut keeper = Keepalive::new(store, a.keys, options);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(e.to_string()))?;
    rt.block_on(async move {
        // Installed before the first pass, so that a signal during it is not missed.
        let stop = crate::sys::stop_requested();
        tokio::pin!(stop);
        // Polled once now: the handlers are installed on the first poll.
        if let std::task::Poll::Ready(r) = futures_poll_once(stop.as_mut()).await {
            r.map_err(|e| Failure::Other(e.to_string()))?;
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "keepalive: refreshing {} ahead of expiry, checking at least every {}",
            humantime::format_duration(a.ahead),
            humantime::format_duration(a.check_every)
        );
        loop {
            // A pass blocks (locks, the provider); a signal during it ends the loop after it,
            // so that no lock of ours or of the programs' is left behind.
            let (back, pass) = tokio::task::spawn_blocking(move || {
                let pass = keeper.pass();
                (keeper, pass)
            })
            .await
            .map_err(|e| Failure::Other(format!("keepalive pass: {e}")))?;
            keeper = back;
            let nap = match pass {
                Ok(pass) => {
                    for r in &pass.reports {
                        eprintln!("keepalive: {:?}: {}", r.key, describe(&r.action));
                    }
                    if a.once {
                        return Ok(if pass.failures == 0 {
                            ExitCode::SUCCESS
                        } else {
                            ExitCode::from(1)
                        });
                    }
                    pass.sleep.max(Duration::from_millis(20))
                }
                // The store itself could not be listed: said, and tried again later.
                Err(e) if !a.once => {
                    eprintln!("keepalive: error[{}]: {e}; trying again later", e.code());
                    a.check_every
                }
                Err(e) => return Err(e.into()),
            };
            tokio::select! {
                _ = tokio::time::sleep(nap) => {}
                _ = &mut stop => break,
            }
        }
        eprintln!("keepalive: stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// A report line: fingerprints only, never a token.
fn describe(action: &KeepaliveAction) -> String {
    match action {
        KeepaliveAction::Fresh { expires_at_ms } => {
            format!("fresh{}", expiry_note(*expires_at_ms))
        }
        KeepaliveAction::Refreshed {
            generation,
            access_token_fingerprint,
            expires_at_ms,
        } => format!(
            "refreshed (generation {generation}, access token {access_token_fingerprint}{})",
            expiry_note(*expires_at_ms)
        ),
        KeepaliveAction::AdoptedFromMirror { generation } => {
            format!("took the tokens the program rotated in its file (generation {generation})")
        }
        KeepaliveAction::RepairedMirror => {
            "rewrote the program's file from the record (it was stale or logged out)".into()
        }
        KeepaliveAction::MirrorMissing => {
            "the program's file is gone (a logout?); left alone until the next refresh".into()
        }
        KeepaliveAction::BackingOff { until_ms } => format!(
            "a refresh failed recently; the next try is in {} ms",
            until_ms.saturating_sub(crate::commands::now_ms()).max(0)
        ),
        KeepaliveAction::MirrorUnreadable(why) => {
            format!("the program's file is left untouched: {why}")
        }
        KeepaliveAction::NeedsLogin(why) => {
            format!("needs login, not refreshing until one happens: {why}")
        }
        KeepaliveAction::CannotRefresh => {
            "no refresh config (import it, or save one with a \"refresh\" config); skipped".into()
        }
        KeepaliveAction::Failed(e) => format!("error[{}]: {e}; trying again later", e.code()),
    }
}

/// Polls `fut` once (installing what its first poll installs) without waiting for it.
async fn futures_poll_once<F: std::future::Future + Unpin>(fut: F) -> std::task::Poll<F::Output> {
    let mut fut = fut;
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::future::Future::poll(std::pin::Pin::new(&mut fut), cx))
    })
    .await
}
