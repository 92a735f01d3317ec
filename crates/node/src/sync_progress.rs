//! The progress line of a node that is syncing: how far it is (epochs and blocks of the highest
//! block a peer listed), what it received, at what rate, and when it should be done.

use std::time::{Duration, Instant};

use petrel_primitives::Policy;
use serde::Serialize;

use crate::node::NodeStatus;

/// How often a syncing node reports progress.
pub(crate) const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// One progress report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct SyncProgress {
    /// Our head's epoch and that of the target.
    pub(crate) epoch: u32,
    pub(crate) target_epoch: u32,
    /// Our head and the highest block a peer listed.
    pub(crate) head_number: u32,
    pub(crate) target_number: u32,
    /// Blocks of the target we hold, in percent.
    pub(crate) percent: f64,
    /// Response bytes received since the node started.
    pub(crate) bytes_received: u64,
    /// Over the last interval.
    pub(crate) bytes_per_sec: f64,
    /// At the average block rate since the sync started; unknown before the first block.
    pub(crate) eta_secs: Option<f64>,
}

impl SyncProgress {
    /// The human line.
    pub(crate) fn line(&self) -> String {
        let eta = match self.eta_secs {
            Some(s) if s < 120.0 => format!("{s:.0} s"),
            Some(s) => format!("{:.0} min", s / 60.0),
            None => "unknown".into(),
        };
        format!(
            "syncing: epoch {}/{}, block {}/{} ({:.0} %), {:.1} MB received, {:.1} MB/s, ETA {eta}",
            self.epoch,
            self.target_epoch,
            self.head_number,
            self.target_number,
            self.percent,
            self.bytes_received as f64 / 1e6,
            self.bytes_per_sec / 1e6,
        )
    }
}

/// Turns successive statuses into progress reports.
#[derive(Debug, Default)]
pub(crate) struct ProgressTracker {
    /// When the current sync started: time and head.
    start: Option<(Instant, u32)>,
    /// The previous report: time and bytes received.
    last: Option<(Instant, u64)>,
}

impl ProgressTracker {
    /// The report for `status` at `now`, or `None` when there is nothing to sync towards (the node
    /// is established, or no peer listed a block above our head).
    pub(crate) fn update(&mut self, now: Instant, status: &NodeStatus, policy: &Policy) -> Option<SyncProgress> {
        let bytes = status.traffic.bytes_received;
        let target = match status.sync_target_number {
            Some(t) if !status.established && t > status.head_number => t,
            _ => {
                self.start = None;
                self.last = Some((now, bytes));
                return None;
            }
        };
        let (t0, h0) = *self.start.get_or_insert((now, status.head_number));
        let (t_last, b_last) = self.last.replace((now, bytes)).unwrap_or((now, bytes));
        let dt = now.saturating_duration_since(t_last).as_secs_f64();
        let bytes_per_sec = if dt > 0.0 { bytes.saturating_sub(b_last) as f64 / dt } else { 0.0 };
        let done = status.head_number.saturating_sub(h0);
        let elapsed = now.saturating_duration_since(t0).as_secs_f64();
        let eta_secs =
            (done > 0 && elapsed > 0.0).then(|| f64::from(target - status.head_number) * elapsed / f64::from(done));
        Some(SyncProgress {
            epoch: policy.epoch_at(status.head_number),
            target_epoch: policy.epoch_at(target),
            head_number: status.head_number,
            target_number: target,
            percent: f64::from(status.head_number) * 100.0 / f64::from(target),
            bytes_received: bytes,
            bytes_per_sec,
            eta_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(head: u32, target: Option<u32>, bytes: u64, established: bool) -> NodeStatus {
        let mut s = NodeStatus { head_number: head, sync_target_number: target, established, ..Default::default() };
        s.traffic.bytes_received = bytes;
        s
    }

    #[test]
    fn reports_epochs_rate_and_eta_while_syncing_and_nothing_once_established() {
        let policy = Policy::DEVNET;
        let epoch = policy.blocks_per_epoch();
        let t0 = Instant::now();
        let mut p = ProgressTracker::default();
        let first = p.update(t0, &status(0, Some(10 * epoch), 0, false), &policy).unwrap();
        assert_eq!((first.epoch, first.target_epoch, first.eta_secs), (0, 10, None), "{first:?}");
        // Two epochs in two seconds, 4 MB: eight epochs left at one per second.
        let second =
            p.update(t0 + Duration::from_secs(2), &status(2 * epoch, Some(10 * epoch), 4_000_000, false), &policy);
        let second = second.unwrap();
        assert_eq!((second.epoch, second.head_number), (2, 2 * epoch));
        assert!((second.percent - 20.0).abs() < 1e-9);
        assert!((second.bytes_per_sec - 2e6).abs() < 1e-3, "{second:?}");
        assert!((second.eta_secs.unwrap() - 8.0).abs() < 1e-9, "{second:?}");
        assert_eq!(
            second.line(),
            format!(
                "syncing: epoch 2/10, block {}/{} (20 %), 4.0 MB received, 2.0 MB/s, ETA 8 s",
                2 * epoch,
                10 * epoch
            )
        );
        assert_eq!(
            p.update(t0 + Duration::from_secs(3), &status(10 * epoch, Some(10 * epoch), 9, true), &policy),
            None
        );
        assert_eq!(p.update(t0 + Duration::from_secs(4), &status(10 * epoch, None, 9, false), &policy), None);
    }
}
