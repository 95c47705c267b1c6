//! `/ws/events`: one browser's live view of the event stream.
//!
//! Before the upgrade: the origin is checked (403), `after_seq` parsed (400),
//! and the client registered with the fan-out (503 when full) — registering
//! *before* reading history is what makes catch-up gapless.
//!
//! After it, two halves run as two tasks joined by `select!` (so each is
//! polled only when its own socket direction, or a kick, wakes it), and
//! whichever ends first ends the connection:
//!
//! * the **writer** replays stored events with `seq > after_seq` page by page,
//!   then sends live messages from the shared feed at its own cursor, feeding
//!   a burst and flushing once. Its [`SeqCursor`] holds the last `seq` sent:
//!   older ones are skipped (no duplicates), and a jump is filled from the
//!   database first (no gaps). If the feed moved on more than a ring's worth
//!   during the replay, it reads the database again before going live;
//!   once live, falling that far behind closes it as a slow consumer.
//!   Every burst also carries what waits in the client's reply box (pongs,
//!   errors, heartbeat pings), and a reply alone makes a burst of its own,
//!   so a backlog never holds a reply back;
//! * the **reader** answers pings, notes pongs, and replies to anything else
//!   with `{"type":"error"}` (through the client's reply box, which the
//!   writer sends) — keeping the connection. A message over
//!   [`MAX_CLIENT_MESSAGE`] closes it with 1009.
//!
//! A kick from the fan-out (slow consumer, heartbeat timeout, shutdown) ends
//! the reader task, which interrupts the writer, even a write stuck on a
//! full socket; the client gets a close frame with the reason when the
//! socket can still take one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::header::{ORIGIN, SEC_WEBSOCKET_KEY, USER_AGENT};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::Ordering;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use shared::Timestamp;
use shared::store::MAX_PAGE;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::cursor::{Next, SeqCursor};
use crate::http::error::ApiError;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::stream::fanout::{ClientHandle, CloseReason, Feed, Outgoing};
use crate::stream::messages::{self, ClientMessage};

/// Largest client message accepted; larger ones close with 1009.
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Per-connection read buffer: small, so idle connections cost little.
const READ_BUFFER: usize = 4 * 1024;
/// Bytes buffered before the writer must flush; bursts flush once anyway.
const WRITE_BUFFER: usize = 8 * 1024;
/// Most queued messages fed before one flush.
const BURST: usize = 64;
/// How long a close frame may take to leave before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(500);

/// Query parameters of `/ws/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct WsQuery {
    /// Replay every stored event with a larger `seq` before going live.
    pub after_seq: Option<i64>,
}

/// Live event stream (WebSocket upgrade). See the README or
/// `/api/asyncapi.json` for the message formats.
#[utoipa::path(
    get,
    path = "/ws/events",
    params(WsQuery),
    responses(
        (status = 101, description = "Switching protocols: the event stream starts"),
        (status = 400, description = "Bad query parameter, or a Sec-WebSocket-Key that is not 16 bytes of base64", body = crate::http::error::ErrorBody),
        (status = 403, description = "Origin not allowed", body = crate::http::error::ErrorBody),
        (status = 503, description = "Server at its client limit", body = crate::http::error::ErrorBody),
    ),
    tag = "stream"
)]
pub async fn ws_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<WsQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let origin = headers.get(ORIGIN).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if !crate::http::origin::is_allowed(origin, &state.config.allowed_origins) {
        tracing::warn!(origin = ?origin, "websocket refused: origin not allowed");
        return ApiError::Forbidden(format!(
            "origin {:?} is not allowed; start the webserver with --allowed-origin to permit it",
            origin.unwrap_or_default()
        ))
        .into_response();
    }
    if !headers.get(SEC_WEBSOCKET_KEY).is_some_and(|key| is_valid_key(key.as_bytes())) {
        return ApiError::BadRequest("Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455)".into()).into_response();
    }
    let after_seq = match query {
        Ok(Query(q)) => q.after_seq,
        Err(e) => {
            return ApiError::BadRequest(format!("after_seq must be an integer ({})", e.body_text())).into_response();
        }
    };
    let (client, feed) = match state.fanout.register() {
        Ok(registered) => registered,
        Err(full) => {
            tracing::warn!(%full, "websocket refused: server full");
            return ApiError::Unavailable(full.to_string()).into_response();
        }
    };
    let agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    tracing::info!(conn = client.id, origin = ?origin, after_seq, agent, "websocket connected");
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_failed_upgrade(|e| tracing::warn!(error = %e, "websocket upgrade failed"))
        .on_upgrade(move |socket| serve(socket, client, feed, state, after_seq))
}

/// RFC 6455 §4.1: the key is 16 random bytes in base64, so exactly 24
/// characters, the last two `=`, and the 22nd carrying 2 bits only.
fn is_valid_key(key: &[u8]) -> bool {
    let base64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/');
    key.len() == 24 && key[..21].iter().all(base64) && b"AQgw".contains(&key[21]) && &key[22..] == b"=="
}

/// How a connection ended.
#[derive(Debug)]
enum Ending {
    ClientClosed,
    /// The socket failed under us (the client vanished without a close).
    ClientGone(String),
    Kicked(CloseReason),
    TooBig,
    /// A frame RFC 6455 forbids: close with this code (1002 or 1007).
    ProtocolError(u16),
    DatabaseUnavailable,
}

type Sink = SplitSink<WebSocket, Message>;

async fn serve(socket: WebSocket, client: ClientHandle, mut feed: Feed, state: AppState, after_seq: Option<i64>) {
    let started = Instant::now();
    let client = Arc::new(client);
    let (mut sink, stream) = socket.split();
    // The reader (and the kick) is a task of its own, woken only by what the
    // client sends or by a kick. Polled beside the writer, it would make a
    // read attempt (and zero tungstenite's read buffer) for every message
    // sent: 6 % of the server's CPU at 1,000 clients, measured with perf.
    let mut reader = tokio::spawn(read_half(stream, client.clone()));
    let mut writer = Writer { sink: &mut sink, client: &client, metrics: &state.metrics, sent: 0, unflushed: 0 };
    let ending = tokio::select! {
        biased;
        // A kick ends the reader, and so interrupts even a write stuck on a full socket.
        ending = &mut reader => ending.unwrap_or_else(|e| Ending::ClientGone(format!("reader task failed: {e}"))),
        ending = write_half(&mut writer, &mut feed, &client, &state, after_seq) => ending,
    };
    reader.abort();
    // The reader's handle on the client goes with its task; with ours and
    // the feed dropped too, the client's slot is free before the line below
    // says it left (a test, or an operator, may act on that line).
    // (A finished task has dropped it already, and its handle, if it won
    // the select above, must not be polled again.)
    if !reader.is_finished() {
        let _ = (&mut reader).await;
    }
    let sent = writer.sent;
    let id = client.id;
    drop(feed);
    drop(client);
    let close = match &ending {
        Ending::Kicked(reason) => Some((reason.code(), reason.text())),
        Ending::TooBig => Some((1009, "message too big")),
        Ending::ProtocolError(1007) => Some((1007, "invalid UTF-8 in a text message")),
        Ending::ProtocolError(code) => Some((*code, "protocol error")),
        Ending::DatabaseUnavailable => Some((1011, "database unavailable; reconnect with after_seq")),
        Ending::ClientClosed | Ending::ClientGone(_) => None,
    };
    if let Some((code, reason)) = close {
        let frame = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(frame)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    match &ending {
        Ending::ClientGone(error) => {
            tracing::info!(conn = id, %error, secs, sent, "websocket lost")
        }
        other => {
            tracing::info!(conn = id, reason = ?other, secs, sent, "websocket disconnected")
        }
    }
}

/// The sending half, counting what it sends. The shared counter is touched
/// once per flush, not once per message.
///
/// It also keeps the client's stuck-write mark (see
/// [`Fanout::close_stuck_writers`](super::fanout::Fanout::close_stuck_writers)):
/// set before the first message fed since the last flush, cleared once the
/// flush is done. Here, where bytes are written, and nowhere else, so every
/// write is watched whoever asks for it (a live burst, a replay page, a gap
/// filled in the middle of a burst).
struct Writer<'a> {
    sink: &'a mut Sink,
    client: &'a ClientHandle,
    metrics: &'a Metrics,
    sent: u64,
    unflushed: u64,
}

impl Writer<'_> {
    async fn feed(&mut self, text: Utf8Bytes) -> Result<(), Ending> {
        if self.unflushed == 0 {
            self.client.writing(true);
        }
        self.sink.feed(Message::Text(text)).await.map_err(|e| Ending::ClientGone(e.to_string()))?;
        self.unflushed += 1;
        Ok(())
    }

    /// Flushes what was fed since the last flush, if anything.
    async fn flush(&mut self) -> Result<(), Ending> {
        if self.unflushed == 0 {
            return Ok(());
        }
        self.sink.flush().await.map_err(|e| Ending::ClientGone(e.to_string()))?;
        self.client.writing(false);
        self.metrics.messages_sent.fetch_add(self.unflushed, Ordering::Relaxed);
        self.sent += self.unflushed;
        self.unflushed = 0;
        Ok(())
    }
}

async fn write_half(
    writer: &mut Writer<'_>,
    feed: &mut Feed,
    client: &ClientHandle,
    state: &AppState,
    after_seq: Option<i64>,
) -> Ending {
    match write_loop(writer, feed, client, state, after_seq).await {
        Ok(()) => Ending::ClientClosed,
        Err(ending) => ending,
    }
}

async fn write_loop(
    writer: &mut Writer<'_>,
    feed: &mut Feed,
    client: &ClientHandle,
    state: &AppState,
    after_seq: Option<i64>,
) -> Result<(), Ending> {
    // The last event `seq` sent to this client.
    let mut cursor = after_seq.map_or(SeqCursor::unset(), SeqCursor::at);
    // While catching up from the database, falling behind the live feed is
    // expected, and answered by reading the database again. The first read
    // from the feed that finds nothing lost since the last pass makes the
    // client live: from then on, falling behind means it is too slow.
    let mut catching_up = after_seq.is_some();
    if let Some(after) = after_seq {
        send_reset_if_deleted(writer, state, after).await?;
        send_stored(writer, state, &mut cursor, None).await?;
    }
    loop {
        // Woken by the feed, or by replies alone (then no feed message).
        let mut received = tokio::select! {
            biased;
            received = feed.recv() => Some(received),
            () = client.replies_ready() => None,
        };
        // Feed what is waiting, up to a burst, then flush once. Messages go
        // straight from the shared feed to the sink: no per-client buffer.
        let mut fed = 0;
        while let Some(next) = received.take() {
            match next {
                Ok(message) => {
                    catching_up = false;
                    fed += send_live(writer, state, client, &mut cursor, message).await?;
                }
                Err(RecvError::Lagged(missed)) if catching_up => {
                    tracing::info!(
                        conn = client.id,
                        missed,
                        "events arrived faster than the replay; reading the database again"
                    );
                    send_stored(writer, state, &mut cursor, None).await?;
                }
                Err(RecvError::Lagged(missed)) => {
                    let why = format!("fell {missed} messages behind the live feed");
                    return Err(Ending::Kicked(client.too_slow(&why)));
                }
                Err(RecvError::Closed) => return Ok(()),
            }
            if fed < BURST {
                received = waiting(feed);
            }
        }
        // Replies ride with the burst: a feed that never runs dry must not
        // hold back a pong, an error or a heartbeat ping.
        for reply in client.take_replies() {
            writer.feed(reply).await?;
        }
        writer.flush().await?;
    }
}

/// What the feed holds already, without waiting: `None` when nothing is
/// waiting, otherwise what `recv` would return.
fn waiting(feed: &mut Feed) -> Option<Result<Outgoing, RecvError>> {
    match feed.try_recv() {
        Ok(message) => Some(Ok(message)),
        Err(TryRecvError::Lagged(missed)) => Some(Err(RecvError::Lagged(missed))),
        Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
        Err(TryRecvError::Empty) => None,
    }
}

/// Feeds one message from the live feed, skipping events already sent and
/// filling any gap before it from the database; returns how many it fed.
async fn send_live(
    writer: &mut Writer<'_>,
    state: &AppState,
    client: &ClientHandle,
    cursor: &mut SeqCursor,
    message: Outgoing,
) -> Result<usize, Ending> {
    let seq = message.seq;
    match cursor.next(seq) {
        Next::Duplicate => return Ok(0),
        // After a lag while catching up (or, never expected, a jump in
        // the sequencer's `seq`), read what lies between rather than lose it.
        Next::Gap { after, before } => {
            tracing::debug!(conn = client.id, after, before, "gap in the feed; reading it from the database");
            send_stored(writer, state, cursor, Some(before)).await?
        }
        Next::InOrder => {}
    }
    cursor.advance(seq);
    writer.feed(message.text).await?;
    Ok(1)
}

/// Tells a resuming client that retention deleted history below or around
/// where it resumes, before the replay (SPEC §11).
async fn send_reset_if_deleted(writer: &mut Writer<'_>, state: &AppState, after: i64) -> Result<(), Ending> {
    let history = state.replay_db.read(|s| s.history()).await.map_err(|e| {
        tracing::warn!(error = %e, "history read failed");
        Ending::DatabaseUnavailable
    })?;
    if let Some(notice) = messages::reset_notice(&history, after) {
        writer.feed(messages::reset(&notice).into()).await?;
    }
    Ok(())
}

/// Sends stored changes after the cursor (and below `before`, if given),
/// page by page, flushing each page; advances the cursor.
async fn send_stored(
    writer: &mut Writer<'_>,
    state: &AppState,
    cursor: &mut SeqCursor,
    before: Option<i64>,
) -> Result<(), Ending> {
    loop {
        let after = cursor.read_after();
        // A flood of catch-ups queues here, not in threads or memory.
        let permit = state.catch_up_reads.acquire().await.map_err(|_| Ending::DatabaseUnavailable)?;
        let page = state.replay_db.read(move |s| s.after_seq(after, MAX_PAGE)).await.map_err(|e| {
            tracing::warn!(error = %e, "catch-up read failed");
            Ending::DatabaseUnavailable
        })?;
        drop(permit);
        let mut reached = page.len() < MAX_PAGE;
        for change in &page {
            if before.is_some_and(|b| change.seq() >= b) {
                reached = true;
                break;
            }
            writer.feed(messages::change_envelope(change).into()).await?;
            cursor.advance(change.seq());
        }
        writer.flush().await?;
        if reached {
            return Ok(());
        }
    }
}

/// The receiving half, run as its own task: ends when the client closes,
/// misbehaves or vanishes, or when the client is kicked.
async fn read_half(mut stream: SplitStream<WebSocket>, client: Arc<ClientHandle>) -> Ending {
    tokio::select! {
        reason = client.control.kicked() => Ending::Kicked(reason),
        ending = read_messages(&mut stream, &client) => ending,
    }
}

async fn read_messages(stream: &mut SplitStream<WebSocket>, client: &ClientHandle) -> Ending {
    while let Some(message) = stream.next().await {
        client.touch();
        match message {
            Ok(Message::Text(text)) => match messages::parse_client(&text) {
                Ok(ClientMessage::Pong) => {}
                Ok(ClientMessage::Ping) => client.reply(messages::pong(Timestamp::now())).await,
                Err(problem) => {
                    tracing::warn!(conn = client.id, %problem, "bad client message");
                    client.reply(messages::error(&problem)).await;
                }
            },
            Ok(Message::Binary(_)) => {
                tracing::warn!(conn = client.id, "binary client message");
                client.reply(messages::error("Binary messages are not supported; send JSON text")).await;
            }
            Ok(Message::Close(_)) => return Ending::ClientClosed,
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Err(e) => {
                return match tungstenite_error(&e) {
                    Some(tungstenite::Error::Capacity(_)) => {
                        tracing::warn!(conn = client.id, "client message over {MAX_CLIENT_MESSAGE} bytes");
                        Ending::TooBig
                    }
                    Some(tungstenite::Error::Utf8(why)) => {
                        tracing::warn!(conn = client.id, %why, "client sent invalid UTF-8");
                        Ending::ProtocolError(1007)
                    }
                    Some(tungstenite::Error::Protocol(why)) => {
                        tracing::warn!(conn = client.id, %why, "client broke the WebSocket protocol");
                        Ending::ProtocolError(1002)
                    }
                    _ => Ending::ClientGone(e.to_string()),
                };
            }
        }
    }
    Ending::ClientClosed
}

/// The WebSocket-level error behind a failed read, if there is one.
fn tungstenite_error(e: &axum::Error) -> Option<&tungstenite::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(found) = err.downcast_ref::<tungstenite::Error>() {
            return Some(found);
        }
        source = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_keys_must_be_16_bytes_of_base64() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "RFC 6455's example");
        for bad in
            [&b"abc"[..], b"dGhlIHNhbXBsZSBub25jZQ", b"dGhlIHNhbXBsZSBub25jZR==", b"dGhlIHNhbXBsZSBub25j!Q==", b""]
        {
            assert!(!is_valid_key(bad), "{}", String::from_utf8_lossy(bad));
        }
    }
}
