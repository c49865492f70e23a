//! Where a turn's time goes, stage by stage, measured from the last voiced frame.

use std::fmt;
use std::time::{Duration, Instant};

/// Stage times of one turn. Each is measured from the turn's origin: the arrival of the last
/// voiced frame for a turn that speech ended, the request for one the caller asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnLatency {
    /// The end of speech was detected (the silence window, plus the VAD's cadence).
    pub speech_end: Option<Duration>,
    /// The final transcript was ready.
    pub transcript: Option<Duration>,
    /// The LLM sent its first token.
    pub first_token: Option<Duration>,
    /// The first clause was complete and went to the voice.
    pub first_clause: Option<Duration>,
    /// The first audio of the reply went out.
    pub first_audio: Option<Duration>,
    /// The reply ended.
    pub total: Option<Duration>,
}

/// The stages in order, with the names metrics and logs use.
const STAGES: [&str; 6] = [
    "speech_end",
    "transcript",
    "first_token",
    "first_clause",
    "first_audio",
    "total",
];

impl TurnLatency {
    fn stages(&self) -> [Option<Duration>; 6] {
        [
            self.speech_end,
            self.transcript,
            self.first_token,
            self.first_clause,
            self.first_audio,
            self.total,
        ]
    }

    /// The stages measured, by name.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, Duration)> {
        STAGES
            .into_iter()
            .zip(self.stages())
            .filter_map(|(name, time)| Some((name, time?)))
    }

    /// Records the stages in the `tessera_voice_turn_seconds{stage}` histograms.
    pub fn record(&self) {
        for (stage, time) in self.named() {
            metrics::histogram!("tessera_voice_turn_seconds", "stage" => stage)
                .record(time.as_secs_f64());
        }
    }
}

impl fmt::Display for TurnLatency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (stage, time) in self.named() {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{stage} {} ms", time.as_millis())?;
        }
        Ok(())
    }
}

/// A turn's clock: stamps stages against the origin, once each.
#[derive(Debug, Clone)]
pub(crate) struct TurnClock {
    origin: Instant,
    pub(crate) latency: TurnLatency,
}

impl TurnClock {
    pub(crate) fn new(origin: Instant) -> TurnClock {
        TurnClock {
            origin,
            latency: TurnLatency::default(),
        }
    }

    /// Sets `stage` to now, unless it was set already.
    pub(crate) fn stamp(&mut self, stage: fn(&mut TurnLatency) -> &mut Option<Duration>) {
        let elapsed = self.origin.elapsed();
        stage(&mut self.latency).get_or_insert(elapsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_stamped_once_and_printed_in_order() {
        let mut clock = TurnClock::new(Instant::now() - Duration::from_millis(50));
        clock.stamp(|l| &mut l.first_audio);
        let first = clock.latency.first_audio;
        clock.stamp(|l| &mut l.first_audio);
        assert_eq!(clock.latency.first_audio, first);
        clock.latency.speech_end = Some(Duration::from_millis(7));
        let text = clock.latency.to_string();
        assert!(text.starts_with("speech_end 7 ms, first_audio "), "{text}");
    }
}
