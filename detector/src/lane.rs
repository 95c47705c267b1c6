//! One subscriber's outgoing lane: the frames waiting for its socket, and the
//! shortcut that skips the wait when nothing is waiting.
//!
//! At a camera's pace (a few events per second) a committed event nearly
//! always finds its subscriber's queue empty and the subscriber's writer task
//! asleep. Handing the frame to that task costs a cross-thread wake-up —
//! about 75 µs on this machine class, more under load — before the first
//! byte moves. So the publishing thread writes the frame itself, without
//! blocking, straight into the socket ([`Direct`]). Only what does not fit
//! right away (a full socket buffer, a partial write) is queued, and the
//! writer task sends it when the socket drains.
//!
//! ```text
//!  publish ──► Lane::offer ── idle? ──► write(2), non-blocking ──► socket
//!                  │                       │ partial / would block
//!                  └──── otherwise ────────┴──► queue ──► writer task ──► socket
//! ```
//!
//! **Invariant:** bytes reach the socket in the order they were offered and
//! never interleave. The publisher writes directly only when nothing is
//! queued and the writer task is not in the middle of a write; it checks both
//! and writes under the lane's lock, and the writer task marks itself as
//! writing under the same lock as it takes frames off the queue.
//!
//! On Windows (named pipes) there is no second handle to write through, so
//! every frame takes the queue.

use std::collections::VecDeque;
use std::io;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

/// What became of an offered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Written to the socket whole, by the caller.
    Sent,
    /// Queued (in whole or in part) for the writer task.
    Queued,
    /// Not taken: the queue is full, the subscriber cannot keep up.
    Full,
}

/// A frame queue shared by publishers and one writer task.
#[derive(Debug)]
pub struct Lane {
    state: Mutex<State>,
    ready: Notify,
    capacity: usize,
    direct: Option<Direct>,
}

#[derive(Debug, Default)]
struct State {
    queued: VecDeque<Bytes>,
    /// The writer task holds frames it took and has not finished writing.
    writing: bool,
}

impl Lane {
    /// A lane holding at most `capacity` queued frames, writing directly
    /// through `direct` when it can.
    pub fn new(capacity: usize, direct: Option<Direct>) -> Self {
        Self { state: Mutex::new(State::default()), ready: Notify::new(), capacity: capacity.max(1), direct }
    }

    /// Sends `frame` now if the lane is idle, else queues it. Never blocks
    /// on the socket.
    pub fn offer(&self, frame: &Bytes) -> Offered {
        let Ok(mut state) = self.state.lock() else {
            return Offered::Full;
        };
        if state.queued.is_empty()
            && !state.writing
            && let Some(direct) = &self.direct
        {
            // Any error but "would block" is left for the writer task to
            // meet on its own write, where it ends the connection.
            let written = direct.try_write(frame).unwrap_or(0);
            if written == frame.len() {
                return Offered::Sent;
            }
            state.queued.push_back(frame.slice(written..));
        } else if state.queued.len() >= self.capacity {
            return Offered::Full;
        } else {
            state.queued.push_back(frame.clone());
        }
        drop(state);
        self.ready.notify_one();
        Offered::Queued
    }

    /// Waits until frames are queued, then moves them into `burst` (at least
    /// one frame, then more while `burst` stays under `max_bytes`) and marks
    /// the lane as writing until [`Lane::written`].
    ///
    /// Cancel safe: frames are taken only when it returns.
    pub async fn next_burst(&self, burst: &mut BytesMut, max_bytes: usize) {
        loop {
            if self.take_burst(burst, max_bytes) {
                return;
            }
            self.ready.notified().await;
        }
    }

    /// Like [`Lane::next_burst`] without waiting: `false` if nothing is queued.
    pub fn take_burst(&self, burst: &mut BytesMut, max_bytes: usize) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        burst.clear();
        while let Some(frame) = state.queued.front() {
            if !burst.is_empty() && burst.len() + frame.len() > max_bytes {
                break;
            }
            burst.extend_from_slice(frame);
            state.queued.pop_front();
        }
        state.writing = !burst.is_empty();
        state.writing
    }

    /// The burst from [`Lane::next_burst`] is written: publishers may write
    /// directly again once the queue is empty.
    pub fn written(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.writing = false;
        }
    }
}

/// A second handle on a subscriber's socket, for non-blocking writes from
/// the publishing thread.
#[derive(Debug)]
pub struct Direct {
    #[cfg(unix)]
    socket: std::os::unix::net::UnixStream,
}

impl Direct {
    /// A duplicate of `stream`'s descriptor, made non-blocking. `None` where
    /// the platform offers none (named pipes) or the descriptor cannot be
    /// duplicated (out of descriptors): the lane then queues every frame.
    pub fn of(stream: &interprocess::local_socket::tokio::Stream) -> Option<Self> {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd;
            let interprocess::local_socket::tokio::Stream::UdSocket(socket) = stream;
            let socket = socket.as_fd().try_clone_to_owned().ok()?;
            Self::from_socket(socket.into()).ok()
        }
        #[cfg(not(unix))]
        {
            let _ = stream;
            None
        }
    }

    /// Wraps `socket`, switching it (and so every handle on it) to
    /// non-blocking: the publishing thread must never wait on a subscriber.
    #[cfg(unix)]
    pub fn from_socket(socket: std::os::unix::net::UnixStream) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(Self { socket })
    }

    /// Writes what fits now; `Ok(0)` rather than an error if nothing does.
    fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        #[cfg(unix)]
        {
            use std::io::Write;
            match (&self.socket).write(bytes) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                other => other,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = bytes;
            Ok(0)
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    use super::*;

    /// A lane over one end of a socket pair, another handle on that end
    /// for playing the writer task, and the peer end.
    fn direct_lane(capacity: usize) -> (Lane, UnixStream, UnixStream) {
        let (ours, peer) = UnixStream::pair().expect("socket pair");
        let task_side = ours.try_clone().expect("clone");
        (Lane::new(capacity, Some(Direct::from_socket(ours).expect("non-blocking"))), task_side, peer)
    }

    /// What the writer task does: take bursts and write them (the socket is
    /// non-blocking, so retry while the peer drains it).
    fn write_queued(lane: &Lane, mut socket: &UnixStream) {
        let mut burst = BytesMut::new();
        while lane.take_burst(&mut burst, usize::MAX) {
            let mut rest = &burst[..];
            while !rest.is_empty() {
                match socket.write(rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                    Err(e) => panic!("write: {e}"),
                }
            }
            lane.written();
        }
    }

    fn read_in_background(mut peer: UnixStream, n: usize) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut got = vec![0; n];
            peer.read_exact(&mut got).expect("read");
            got
        })
    }

    #[test]
    fn an_idle_lane_writes_the_frame_itself() {
        let (lane, _task_side, mut peer) = direct_lane(4);
        assert_eq!(lane.offer(&Bytes::from_static(b"one")), Offered::Sent);
        assert_eq!(lane.offer(&Bytes::from_static(b"two")), Offered::Sent);
        let mut got = [0; 6];
        peer.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"onetwo");
        assert!(!lane.take_burst(&mut BytesMut::new(), 1024), "nothing was queued");
    }

    #[test]
    fn what_does_not_fit_is_queued_and_later_frames_wait_behind_it() {
        let (lane, task_side, peer) = direct_lane(4);
        // Far more than a socket buffer: only a prefix can go directly.
        let big = Bytes::from((0..4_000_000u32).map(|i| i as u8).collect::<Vec<_>>());
        assert_eq!(lane.offer(&big), Offered::Queued);
        assert_eq!(lane.offer(&Bytes::from_static(b"after")), Offered::Queued);

        let reader = read_in_background(peer, big.len() + 5);
        write_queued(&lane, &task_side);
        let mut expected = big.to_vec();
        expected.extend_from_slice(b"after");
        assert!(reader.join().expect("reader") == expected, "bytes reordered or interleaved");
    }

    #[test]
    fn while_the_writer_task_writes_publishers_queue_behind_it() {
        let (lane, task_side, peer) = direct_lane(4);
        let big = Bytes::from(vec![7u8; 4_000_000]);
        assert_eq!(lane.offer(&big), Offered::Queued);
        let mut burst = BytesMut::new();
        assert!(lane.take_burst(&mut burst, usize::MAX), "the rest of `big` was queued");
        // The queue is empty now, but the task holds unwritten bytes.
        assert_eq!(lane.offer(&Bytes::from_static(b"next")), Offered::Queued);

        let reader = read_in_background(peer, big.len() + 4);
        let prefix = big.len() - burst.len();
        task_side.set_nonblocking(false).expect("blocking");
        (&task_side).write_all(&burst).expect("write the burst");
        lane.written();
        write_queued(&lane, &task_side);
        let got = reader.join().expect("reader");
        assert!(got[..big.len()] == big[..], "the direct prefix ({prefix} bytes) and the burst joined");
        assert_eq!(&got[big.len()..], b"next");
    }

    #[test]
    fn a_full_queue_refuses_and_bursts_keep_order_within_their_size() {
        let lane = Lane::new(3, None);
        for frame in [&b"a"[..], b"b", b"c"] {
            assert_eq!(lane.offer(&Bytes::copy_from_slice(frame)), Offered::Queued);
        }
        assert_eq!(lane.offer(&Bytes::from_static(b"d")), Offered::Full);
        let mut burst = BytesMut::new();
        assert!(lane.take_burst(&mut burst, 2));
        assert_eq!(&burst[..], b"ab", "a burst stops before exceeding its size");
        lane.written();
        assert!(lane.take_burst(&mut burst, 2));
        assert_eq!(&burst[..], b"c");
        assert!(!lane.take_burst(&mut burst, 2));
    }
}
