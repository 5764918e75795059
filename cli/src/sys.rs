//! The CLI's one platform difference: which signals ask a long-running command to stop.

/// Resolves when the process is asked to stop: SIGTERM or SIGINT on Unix, Ctrl-C (or
/// Ctrl-Break) on Windows. Fails only when the handlers cannot be installed.
pub(crate) async fn stop_requested() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = interrupt.recv() => Ok(()),
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(windows)]
    {
        let mut brk = tokio::signal::windows::ctrl_break()?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted,
            _ = brk.recv() => Ok(()),
        }
    }
}
