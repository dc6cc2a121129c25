// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A minimal QMP (QEMU Machine Protocol) client: capability negotiation, commands, the
//! `SHUTDOWN` event and the instruction count, one JSON object per line.

use crate::error::Error;
use crate::supervise::POLL_INTERVAL;
use rustix::event::{PollFd, PollFlags, Timespec};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Bounds on reading while a VM starts: QEMU must answer by `deadline`, and raising
/// `interrupt` stops the wait.
#[derive(Clone)]
pub(crate) struct ReadLimit {
    /// When to give up.
    pub(crate) deadline: Instant,
    /// How long that was, for the error.
    pub(crate) timeout: Duration,
    /// Raised by the caller to stop waiting.
    pub(crate) interrupt: Arc<AtomicBool>,
}

/// What the monitor saw of a VM's end.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Ending {
    /// The `reason` of the first `SHUTDOWN` event, a QAPI `ShutdownCause`, if there was one.
    pub(crate) shutdown_cause: Option<String>,
    /// Guest instructions executed from reset until the guest powered off or reset, when
    /// QEMU counted them and said how many.
    pub(crate) instructions: Option<u64>,
}

/// How QEMU answered a command.
enum Reply {
    /// The command succeeded with this `return` value.
    Return(Value),
    /// The command failed with this `error` object.
    Error(Value),
    /// QEMU closed the monitor (it exited) before answering.
    Closed,
}

/// A connected QMP monitor.
pub(crate) struct QmpClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// The `reason` of the first `SHUTDOWN` event seen, a QAPI `ShutdownCause`.
    shutdown_cause: Option<String>,
    /// While set, every read is bounded by it.
    read_limit: Option<ReadLimit>,
}

impl QmpClient {
    /// Wraps a stream connected to QEMU's QMP monitor.
    pub(crate) fn new(stream: UnixStream) -> Result<Self, Error> {
        let writer = stream
            .try_clone()
            .map_err(Error::io("clone the QMP socket"))?;
        Ok(Self {
            reader: BufReader::new(stream),
            writer,
            shutdown_cause: None,
            read_limit: None,
        })
    }

    /// Bounds every later read by `limit`, or lifts the bound with `None`.
    pub(crate) fn limit_reads(&mut self, limit: Option<ReadLimit>) {
        self.read_limit = limit;
    }

    /// Returns once a message can be read without blocking past the read limit, if any.
    fn wait_readable(&self) -> Result<(), Error> {
        let Some(limit) = &self.read_limit else {
            return Ok(());
        };
        let poll_interval = Timespec::try_from(POLL_INTERVAL).unwrap_or_default();
        while self.reader.buffer().is_empty() {
            let mut fds = [PollFd::new(self.reader.get_ref(), PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&poll_interval)) {
                Ok(0) | Err(rustix::io::Errno::INTR) => {}
                Ok(_) => return Ok(()),
                Err(errno) => return Err(Error::io("wait for QMP")(errno.into())),
            }
            if limit.interrupt.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            if Instant::now() >= limit.deadline {
                return Err(Error::QemuStartTimeout(limit.timeout));
            }
        }
        Ok(())
    }

    /// Reads QEMU's greeting and leaves capability negotiation mode, after which QEMU sends
    /// events.
    pub(crate) fn negotiate(&mut self) -> Result<(), Error> {
        match self.read_message()? {
            Some(greeting) if greeting.get("QMP").is_some() => self.execute("qmp_capabilities"),
            Some(other) => Err(Error::Qmp(format!(
                "expected the QMP greeting, got {other}"
            ))),
            None => Err(Error::Qmp(
                "QEMU closed its QMP monitor before greeting".to_owned(),
            )),
        }
    }

    /// Runs a command without arguments and waits for its successful return.
    pub(crate) fn execute(&mut self, command: &str) -> Result<(), Error> {
        match self.request(command)? {
            Reply::Return(_) => Ok(()),
            Reply::Error(error) => Err(Error::Qmp(format!("`{command}` failed: {error}"))),
            Reply::Closed => Err(Error::Qmp(format!(
                "QEMU closed its QMP monitor during `{command}`"
            ))),
        }
    }

    /// Reads until QEMU closes the monitor (it does when it exits) and says how the VM ended.
    ///
    /// With `count_instructions`, QEMU runs with `-icount` and `-no-shutdown`, so it pauses
    /// instead of exiting at the first `SHUTDOWN` event: once that comes, this asks for the
    /// instruction count (`query-replay`), if the guest itself powered off or reset, and then
    /// tells QEMU to `quit`, whatever the cause, since a paused QEMU would never close the
    /// monitor. If QEMU exits meanwhile (killed, crashed), the count is simply unknown.
    pub(crate) fn wait_for_close(mut self, count_instructions: bool) -> Result<Ending, Error> {
        let mut instructions = None;
        if count_instructions {
            // The event may already have come while the guest was being started.
            while self.shutdown_cause.is_none() {
                if self.read_message()?.is_none() {
                    return Ok(self.ending(None));
                }
            }
            if matches!(
                self.shutdown_cause.as_deref(),
                Some("guest-shutdown" | "guest-reset")
            ) {
                instructions = match self.request("query-replay")? {
                    Reply::Return(info) => info.get("icount").and_then(Value::as_u64),
                    Reply::Error(_) | Reply::Closed => None,
                };
            }
            match self.request("quit")? {
                Reply::Return(_) | Reply::Closed => {}
                // QEMU stays paused: the caller sees the error and kills it.
                Reply::Error(error) => return Err(Error::Qmp(format!("`quit` failed: {error}"))),
            }
        }
        while self.read_message()?.is_some() {}
        Ok(self.ending(instructions))
    }

    /// The end seen so far, with `instructions` as the count.
    fn ending(self, instructions: Option<u64>) -> Ending {
        Ending {
            shutdown_cause: self.shutdown_cause,
            instructions,
        }
    }

    /// Sends a command without arguments and reads until QEMU answers it or closes the
    /// monitor; events read meanwhile are noted as usual.
    fn request(&mut self, command: &str) -> Result<Reply, Error> {
        let mut line = json!({ "execute": command }).to_string();
        line.push('\n');
        match self.writer.write_all(line.as_bytes()) {
            Ok(()) => {}
            // QEMU exited: what it sent before is still to be read, its answer never comes.
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                ) =>
            {
                while self.read_message()?.is_some() {}
                return Ok(Reply::Closed);
            }
            Err(error) => return Err(Error::io("send a QMP command")(error)),
        }
        loop {
            let Some(mut message) = self.read_message()? else {
                return Ok(Reply::Closed);
            };
            if let Some(value) = message.get_mut("return") {
                return Ok(Reply::Return(value.take()));
            }
            if let Some(error) = message.get_mut("error") {
                return Ok(Reply::Error(error.take()));
            }
        }
    }

    /// Reads one message, noting `SHUTDOWN` events; `None` when QEMU closed the monitor.
    fn read_message(&mut self) -> Result<Option<Value>, Error> {
        self.wait_readable()?;
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            // QEMU exiting with input still queued resets the socket instead of closing it;
            // everything it sent before has been read by then.
            Err(error) if error.kind() == ErrorKind::ConnectionReset => return Ok(None),
            Err(error) => return Err(Error::io("read from QMP")(error)),
        }
        let message: Value = serde_json::from_str(&line)
            .map_err(|error| Error::Qmp(format!("bad message {line:?}: {error}")))?;
        if message.get("event").and_then(Value::as_str) == Some("SHUTDOWN")
            && self.shutdown_cause.is_none()
        {
            self.shutdown_cause = Some(
                message
                    .pointer("/data/reason")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
            );
        }
        Ok(Some(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::Shutdown;
    use std::thread;

    /// Plays QEMU's side of a conversation: sends `script` after reading one command per
    /// `"<command>"` entry.
    fn fake_qemu(script: &[&'static str]) -> (UnixStream, thread::JoinHandle<Vec<String>>) {
        let (client, mut server) = UnixStream::pair().unwrap();
        let script = script.to_vec();
        let qemu = thread::spawn(move || {
            let mut commands = Vec::new();
            let mut reader = BufReader::new(server.try_clone().unwrap());
            for line in script {
                if line == "<command>" {
                    let mut command = String::new();
                    reader.read_line(&mut command).unwrap();
                    commands.push(command);
                } else {
                    writeln!(server, "{line}").unwrap();
                }
            }
            server.shutdown(Shutdown::Write).unwrap();
            let mut rest = String::new();
            reader.read_to_string(&mut rest).unwrap();
            commands
        });
        (client, qemu)
    }

    const GREETING: &str = r#"{"QMP": {"version": {}, "capabilities": ["oob"]}}"#;

    #[test]
    fn negotiates_runs_and_sees_shutdown() {
        let (stream, qemu) = fake_qemu(&[
            GREETING,
            "<command>",
            r#"{"return": {}}"#,
            "<command>",
            r#"{"event": "RESUME", "timestamp": {}}"#,
            r#"{"return": {}}"#,
            r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}}"#,
            r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}}"#,
        ]);
        let mut client = QmpClient::new(stream).unwrap();
        client.negotiate().unwrap();
        client.execute("cont").unwrap();
        assert_eq!(
            client
                .wait_for_close(false)
                .unwrap()
                .shutdown_cause
                .as_deref(),
            Some("guest-reset")
        );
        assert_eq!(
            qemu.join().unwrap(),
            [
                "{\"execute\":\"qmp_capabilities\"}\n",
                "{\"execute\":\"cont\"}\n"
            ]
        );
    }

    #[test]
    fn event_during_command_is_kept() {
        let (stream, _qemu) = fake_qemu(&[
            GREETING,
            "<command>",
            r#"{"return": {}}"#,
            "<command>",
            r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#,
            r#"{"return": {}}"#,
        ]);
        let mut client = QmpClient::new(stream).unwrap();
        client.negotiate().unwrap();
        client.execute("cont").unwrap();
        assert_eq!(
            client
                .wait_for_close(false)
                .unwrap()
                .shutdown_cause
                .as_deref(),
            Some("guest-shutdown")
        );
    }

    #[test]
    fn reports_errors_and_early_close() {
        let (stream, _qemu) = fake_qemu(&[
            GREETING,
            "<command>",
            r#"{"error": {"class": "GenericError", "desc": "nope"}}"#,
        ]);
        let error = QmpClient::new(stream).unwrap().negotiate().unwrap_err();
        assert!(error.to_string().contains("nope"), "{error}");

        let (stream, _qemu) = fake_qemu(&[]);
        let error = QmpClient::new(stream).unwrap().negotiate().unwrap_err();
        assert!(error.to_string().contains("before greeting"), "{error}");

        let (stream, _qemu) = fake_qemu(&["not json"]);
        assert!(matches!(
            QmpClient::new(stream).unwrap().negotiate(),
            Err(Error::Qmp(_))
        ));
    }

    #[test]
    fn reset_after_shutdown_event_is_a_close() {
        let (mut client, mut qemu) = UnixStream::pair().unwrap();
        writeln!(
            qemu,
            r#"{{"event": "SHUTDOWN", "data": {{"reason": "guest-shutdown"}}}}"#
        )
        .unwrap();
        // Closing with unread input makes the client's next read fail with ECONNRESET.
        client.write_all(b"unread\n").unwrap();
        drop(qemu);
        let ending = QmpClient::new(client)
            .unwrap()
            .wait_for_close(false)
            .unwrap();
        assert_eq!(ending.shutdown_cause.as_deref(), Some("guest-shutdown"));
    }

    #[test]
    fn a_silent_qemu_times_out_or_is_interrupted() {
        let (client, _qemu) = UnixStream::pair().unwrap();
        let mut client = QmpClient::new(client).unwrap();
        let interrupt = Arc::new(AtomicBool::new(false));
        client.limit_reads(Some(ReadLimit {
            deadline: Instant::now(),
            timeout: Duration::from_secs(30),
            interrupt: Arc::clone(&interrupt),
        }));
        assert!(matches!(
            client.negotiate(),
            Err(Error::QemuStartTimeout(timeout)) if timeout == Duration::from_secs(30)
        ));
        interrupt.store(true, Ordering::Relaxed);
        client.limit_reads(Some(ReadLimit {
            deadline: Instant::now() + Duration::from_secs(3600),
            timeout: Duration::from_secs(3600),
            interrupt,
        }));
        assert!(matches!(client.negotiate(), Err(Error::Interrupted)));
    }

    #[test]
    fn no_shutdown_event() {
        let (stream, _qemu) = fake_qemu(&[r#"{"event": "STOP"}"#]);
        assert_eq!(
            QmpClient::new(stream)
                .unwrap()
                .wait_for_close(false)
                .unwrap(),
            Ending::default()
        );
    }

    /// Negotiates and starts the guest, then waits for the end with the instruction count.
    fn started_and_counted(stream: UnixStream) -> Result<Ending, Error> {
        let mut client = QmpClient::new(stream)?;
        client.negotiate()?;
        client.execute("cont")?;
        client.wait_for_close(true)
    }

    /// The ending `cause` with `instructions`.
    fn ending(cause: &str, instructions: Option<u64>) -> Ending {
        Ending {
            shutdown_cause: Some(cause.to_owned()),
            instructions,
        }
    }

    /// QEMU's side of `negotiate` and `cont` up to the answer to `cont`, then `rest`.
    fn started(rest: &[&'static str]) -> Vec<&'static str> {
        [
            &[GREETING, "<command>", r#"{"return": {}}"#, "<command>"],
            rest,
        ]
        .concat()
    }

    #[test]
    fn counts_instructions_after_guest_shutdown_then_quits() {
        let (stream, qemu) = fake_qemu(&started(&[
            r#"{"return": {}}"#,
            r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#,
            r#"{"event": "STOP", "timestamp": {}}"#,
            "<command>",
            // QEMU may interleave events before the answer.
            r#"{"event": "RTC_CHANGE", "data": {"offset": 0}}"#,
            r#"{"return": {"icount": 253293, "mode": "none"}}"#,
            "<command>",
            r#"{"return": {}}"#,
            r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#,
        ]));
        assert_eq!(
            started_and_counted(stream).unwrap(),
            ending("guest-shutdown", Some(253_293))
        );
        assert_eq!(
            qemu.join().unwrap(),
            [
                "{\"execute\":\"qmp_capabilities\"}\n",
                "{\"execute\":\"cont\"}\n",
                "{\"execute\":\"query-replay\"}\n",
                "{\"execute\":\"quit\"}\n",
            ]
        );
    }

    #[test]
    fn counts_a_reset_that_came_during_start() {
        let (stream, qemu) = fake_qemu(&started(&[
            r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}}"#,
            r#"{"return": {}}"#,
            "<command>",
            r#"{"return": {"icount": 7, "mode": "none"}}"#,
            "<command>",
            // QEMU may exit before answering `quit`.
        ]));
        assert_eq!(
            started_and_counted(stream).unwrap(),
            ending("guest-reset", Some(7))
        );
        assert_eq!(qemu.join().unwrap().len(), 4);
    }

    #[test]
    fn host_caused_shutdown_is_not_counted_but_quit() {
        let (stream, qemu) = fake_qemu(&started(&[
            r#"{"return": {}}"#,
            r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}}"#,
            "<command>",
        ]));
        assert_eq!(
            started_and_counted(stream).unwrap(),
            ending("host-signal", None)
        );
        assert_eq!(
            qemu.join().unwrap().last().unwrap(),
            "{\"execute\":\"quit\"}\n"
        );
    }

    #[test]
    fn qemu_gone_before_the_count_is_unknown() {
        // Closed while the question is pending.
        let (stream, _qemu) = fake_qemu(&started(&[
            r#"{"return": {}}"#,
            r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#,
            "<command>",
        ]));
        assert_eq!(
            started_and_counted(stream).unwrap(),
            ending("guest-shutdown", None)
        );

        // Gone before the question is even sent: writing fails, no answer is awaited.
        let (client, mut qemu) = UnixStream::pair().unwrap();
        writeln!(
            qemu,
            r#"{{"event": "SHUTDOWN", "data": {{"guest": true, "reason": "guest-reset"}}}}"#
        )
        .unwrap();
        drop(qemu);
        assert_eq!(
            QmpClient::new(client)
                .unwrap()
                .wait_for_close(true)
                .unwrap(),
            ending("guest-reset", None)
        );

        // Gone without any shutdown: nothing to ask.
        let (stream, qemu) = fake_qemu(&started(&[r#"{"return": {}}"#]));
        assert_eq!(started_and_counted(stream).unwrap(), Ending::default());
        assert_eq!(qemu.join().unwrap().len(), 2);
    }

    #[test]
    fn refused_count_is_unknown_and_refused_quit_is_an_error() {
        let (stream, qemu) = fake_qemu(&started(&[
            r#"{"return": {}}"#,
            r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#,
            "<command>",
            r#"{"error": {"class": "CommandNotFound", "desc": "no query-replay"}}"#,
            "<command>",
            r#"{"return": {}}"#,
        ]));
        assert_eq!(
            started_and_counted(stream).unwrap(),
            ending("guest-shutdown", None)
        );
        assert_eq!(qemu.join().unwrap().len(), 4);

        let (stream, _qemu) = fake_qemu(&started(&[
            r#"{"return": {}}"#,
            r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#,
            "<command>",
            r#"{"return": {"icount": 1, "mode": "none"}}"#,
            "<command>",
            r#"{"error": {"class": "GenericError", "desc": "not now"}}"#,
        ]));
        let error = started_and_counted(stream).unwrap_err();
        assert!(error.to_string().contains("not now"), "{error}");
    }
}
