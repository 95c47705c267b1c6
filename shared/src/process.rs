//! Process plumbing both binaries share: logging setup, the async runtime
//! around `main`, and shutdown signals.

/// Installs the `tracing` subscriber: stderr, `directive` (else `$RUST_LOG`,
/// else `info`), human or JSON lines, colours only on a terminal. Returns
/// the problem with a bad directive, for a usage error.
pub fn init_logging(directive: Option<&str>, json: bool) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let directive = directive
        .map(str::to_owned)
        .or_else(|| std::env::var(crate::config::LOG_ENV).ok())
        .unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(&directive).map_err(|e| format!("invalid --log-level {directive:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(())
}

/// Runs a binary's async `main` on a multi-threaded runtime. An error is
/// logged and printed as `error: …` (alternate form, so an error chain
/// shows its causes), and `None` is returned for the caller's exit code.
pub fn run_async<T, E: std::fmt::Display>(main: impl Future<Output = Result<T, E>>) -> Option<T> {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return None;
        }
    };
    match runtime.block_on(main) {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            None
        }
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM, naming it. Install it
/// early: signals before the first poll are still caught on Unix.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = &'static str>> {
    #[cfg(unix)]
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = sigterm.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    })
}

/// Keeps SIGHUP (what `systemctl reload` sends) from ending the process,
/// its default: each one is logged and `on_hangup` runs. Call from inside
/// the runtime, early. A no-op where there are no signals.
pub fn handle_hangups(on_hangup: impl Fn() + Send + 'static) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                on_hangup();
            }
        });
    }
    #[cfg(not(unix))]
    drop(on_hangup);
    Ok(())
}
