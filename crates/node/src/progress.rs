//! A small progress reporter for long commands. Exactly one of three outputs, chosen once:
//! - an indicatif bar on stderr when stderr is a terminal;
//! - otherwise plain log lines (tracing, on stderr) at most every [`LOG_INTERVAL`] or every 10 %;
//! - nothing at all with `--json` (stdout then carries only the final JSON object).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Longest silence between two progress log lines (when not drawing a bar).
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(2);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Nothing (`--json`).
    Silent,
    /// An indicatif bar on stderr.
    Bar,
    /// Throttled log lines.
    Log,
}

impl Mode {
    /// Silent for JSON output, a bar when stderr is a terminal, log lines otherwise.
    pub(crate) fn detect(json: bool) -> Self {
        if json {
            Mode::Silent
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Log
        }
    }
}

/// Decides when a log line is due: on the first call, every new 10 % step, or after
/// [`LOG_INTERVAL`] without a line.
#[derive(Debug)]
struct Throttle {
    last: Option<Instant>,
    last_decile: u64,
}

impl Throttle {
    fn new() -> Self {
        Self { last: None, last_decile: 0 }
    }

    fn due(&mut self, now: Instant, pos: u64, total: u64) -> bool {
        let decile = pos.min(total).saturating_mul(10).checked_div(total).unwrap_or(10);
        let due = match self.last {
            None => true,
            Some(last) => decile > self.last_decile || now.saturating_duration_since(last) >= LOG_INTERVAL,
        };
        if due {
            self.last = Some(now);
            self.last_decile = decile;
        }
        due
    }
}

/// Progress of one task counted in items (blocks).
#[derive(Debug)]
pub(crate) struct Progress {
    label: &'static str,
    mode: Mode,
    total: u64,
    pos: u64,
    start: Instant,
    bar: Option<ProgressBar>,
    throttle: Throttle,
}

impl Progress {
    /// A reporter for `total` items.
    pub(crate) fn new(label: &'static str, total: u64, mode: Mode) -> Self {
        let bar = (mode == Mode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{elapsed_precise}] {wide_bar:.cyan/blue} {pos}/{len} blocks ({rate}, eta {eta})",
            ) {
                let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1}/s", state.per_sec());
                };
                bar.set_style(style.with_key("rate", rate).progress_chars("=> "));
            }
            bar.set_message(label);
            bar
        });
        Self { label, mode, total, pos: 0, start: Instant::now(), bar, throttle: Throttle::new() }
    }

    /// Changes the number of items to reach.
    pub(crate) fn set_total(&mut self, total: u64) {
        if total != self.total {
            self.total = total;
            if let Some(bar) = &self.bar {
                bar.set_length(total);
            }
        }
    }

    /// Records that `pos` items are done.
    pub(crate) fn set(&mut self, pos: u64) {
        self.pos = pos;
        match self.mode {
            Mode::Silent => {}
            Mode::Bar => {
                if let Some(bar) = &self.bar {
                    bar.set_position(pos);
                }
            }
            Mode::Log => {
                if self.throttle.due(Instant::now(), pos, self.total) {
                    self.log_line();
                }
            }
        }
    }

    fn log_line(&self) {
        let secs = self.start.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { self.pos as f64 / secs } else { 0.0 };
        let pct = if self.total == 0 { 100.0 } else { self.pos as f64 * 100.0 / self.total as f64 };
        tracing::info!("{}: {}/{} blocks ({pct:.0}%), {rate:.1} blocks/s", self.label, self.pos, self.total);
    }

    /// An informational message, shown unless silent (above the bar when one is drawn).
    pub(crate) fn note(&self, message: &str) {
        match (&self.bar, self.mode) {
            (_, Mode::Silent) => {}
            (Some(bar), _) => bar.suspend(|| tracing::info!("{message}")),
            (None, _) => tracing::info!("{message}"),
        }
    }

    /// Ends the task: clears the bar; in log mode prints the final count if it was not the last line.
    pub(crate) fn finish(mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.mode == Mode::Log && self.throttle.last_decile < 10 && self.pos > 0 {
            self.log_line();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // On an error path, do not leave a half-drawn bar above the error message.
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_logs_first_then_every_decile_or_interval() {
        let t0 = Instant::now();
        let mut t = Throttle::new();
        assert!(t.due(t0, 0, 1000), "the first call always logs");
        assert!(!t.due(t0, 50, 1000), "5 % and no time passed");
        assert!(t.due(t0, 100, 1000), "10 % reached");
        assert!(!t.due(t0 + Duration::from_millis(1999), 150, 1000));
        assert!(t.due(t0 + Duration::from_secs(2), 160, 1000), "2 s passed");
        assert!(!t.due(t0 + Duration::from_secs(2), 199, 1000));
        assert!(t.due(t0 + Duration::from_secs(2), 1000, 1000), "done");
        assert!(!t.due(t0 + Duration::from_secs(2), 1000, 1000), "only once at 100 %");
    }

    #[test]
    fn throttle_handles_zero_total() {
        let mut t = Throttle::new();
        let now = Instant::now();
        assert!(t.due(now, 0, 0));
        assert!(!t.due(now, 0, 0));
    }

    #[test]
    fn silent_progress_draws_nothing_but_keeps_count() {
        let mut p = Progress::new("test", 10, Mode::Silent);
        assert!(p.bar.is_none(), "no bar in silent mode");
        p.set(5);
        p.set_total(20);
        p.note("hidden");
        assert_eq!((p.pos, p.total), (5, 20));
        assert!(p.throttle.last.is_none(), "no log line was written");
        p.finish();
        // A bar-mode reporter, by contrast, has a bar that follows the count.
        let mut b = Progress::new("test", 10, Mode::Bar);
        b.set(7);
        assert_eq!(b.bar.as_ref().map(|bar| bar.position()), Some(7));
    }
}
