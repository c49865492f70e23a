//! Progress of one file: a bar with bytes and ETA on a terminal, quiet log lines otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Reports the progress of fetching one file.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    started: Instant,
}

impl Progress {
    /// Starts reporting `label` (`model/file from source`) of `total` bytes.
    pub(crate) fn start(enabled: bool, label: String, total: u64) -> Progress {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(label.clone());
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        tracing::info!(file = %label, bytes = total, "fetching");
        Progress {
            bar,
            label,
            total,
            started: Instant::now(),
        }
    }

    /// Sets the number of bytes done so far.
    pub(crate) fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    /// Adds bytes done.
    pub(crate) fn add(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// Ends the report with success.
    pub(crate) fn done(self) {
        let seconds = self.started.elapsed().as_secs_f64();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        tracing::info!(
            file = %self.label,
            bytes = self.total,
            seconds = format!("{seconds:.1}"),
            "fetched and verified"
        );
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
