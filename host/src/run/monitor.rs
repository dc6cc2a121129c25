// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Watching a running VM through its QMP monitor until QEMU exits: how the VM ended and, when
//! QEMU counts instructions, how many the guest executed.

use crate::error::Error;
use crate::run::death_reason::ShutdownCause;
use crate::run::qmp::QmpClient;

/// What the monitor saw of a VM's end.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Ending {
    /// The cause of the first `SHUTDOWN` event, if there was one.
    pub(crate) shutdown_cause: Option<ShutdownCause>,
    /// Guest instructions executed from reset until the guest powered off or reset, when
    /// QEMU counted them and said how many.
    pub(crate) instructions: Option<u64>,
}

/// Reads `qmp` until QEMU closes it (it does when it exits) and says how the VM ended.
///
/// `after_shutdown` runs at the first `SHUTDOWN` event, or when QEMU closes the monitor
/// without one: QEMU needs none of the files it was started with from then on, and exiting
/// takes it a few milliseconds, which the caller's clean-up can overlap.
///
/// With `count_instructions`, QEMU runs with `-icount` and `-no-shutdown`, so it pauses instead
/// of exiting at the first `SHUTDOWN` event: once that comes, this asks for the instruction
/// count if the guest itself ended the VM, and then tells QEMU to `quit`, whatever the cause,
/// since a paused QEMU would never close the monitor. If QEMU exits meanwhile (killed,
/// crashed), the count is simply unknown.
pub(crate) fn watch(
    mut qmp: QmpClient,
    count_instructions: bool,
    after_shutdown: impl FnOnce(),
) -> Result<Ending, Error> {
    let cause = qmp.wait_for_shutdown();
    after_shutdown();
    let Some(cause) = cause? else {
        return Ok(Ending::default());
    };
    let mut instructions = None;
    if count_instructions {
        if cause.guest_ended_the_vm() {
            instructions = qmp.instruction_count()?;
        }
        // If QEMU refuses, it stays paused: the caller sees the error and kills it.
        qmp.quit()?;
    }
    qmp.wait_for_close()?;
    Ok(Ending {
        shutdown_cause: Some(cause),
        instructions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::qmp::tests::{GREETING, fake_qemu};
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    /// Negotiates and starts the guest, then waits for the end with the instruction count.
    fn started_and_counted(stream: UnixStream) -> Result<Ending, Error> {
        let mut client = QmpClient::new(stream)?;
        client.negotiate()?;
        client.cont()?;
        watch(client, true, || {})
    }

    /// The ending `cause` with `instructions`.
    fn ending(cause: &str, instructions: Option<u64>) -> Ending {
        Ending {
            shutdown_cause: Some(serde_json::from_value(cause.into()).unwrap()),
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
    fn the_files_go_at_shutdown_while_qemu_still_runs() {
        let (client, mut qemu) = UnixStream::pair().unwrap();
        writeln!(
            qemu,
            r#"{{"event": "SHUTDOWN", "data": {{"guest": true, "reason": "guest-shutdown"}}}}"#
        )
        .unwrap();
        // QEMU keeps its monitor open until the files are gone: were they removed only once it
        // closed it, the watch would never end.
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(watch(QmpClient::new(client).unwrap(), false, move || {
                drop(qemu)
            }));
        });
        let watched = result
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the files are removed at the SHUTDOWN event, before QEMU closes")
            .unwrap();
        assert_eq!(watched, ending("guest-shutdown", None));
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
            watch(QmpClient::new(client).unwrap(), true, || {}).unwrap(),
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
