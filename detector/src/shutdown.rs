//! Turning Ctrl-C and SIGTERM into one cancellation token.
//!
//! Everything long-running takes a clone of the token and stops at its next
//! safe point; the order of stopping is decided in `main`.

use tokio_util::sync::CancellationToken;

/// Returns a token cancelled on the first Ctrl-C (SIGINT) or SIGTERM.
pub fn on_signal() -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    #[cfg(unix)]
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let trigger = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        let which = tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = sigterm.recv() => "SIGTERM",
        };
        #[cfg(not(unix))]
        let which = {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        };
        tracing::info!(signal = which, "shutting down: finishing the event in hand");
        trigger.cancel();
    });
    Ok(token)
}
