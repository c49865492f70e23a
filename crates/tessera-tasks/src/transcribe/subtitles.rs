//! Subtitles from segments: SubRip (`.srt`) and WebVTT (`.vtt`).

use super::Segment;

/// `HH:MM:SS` then the millisecond separator and milliseconds.
fn clock(seconds: f64, separator: char) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    let (hours, rest) = (millis / 3_600_000, millis % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    format!(
        "{hours:02}:{minutes:02}:{:02}{separator}{:03}",
        rest / 1000,
        rest % 1000
    )
}

/// SubRip: numbered cues from 1, `00:00:01,500 --> 00:00:03,000`, blank line between cues.
pub fn srt(segments: &[Segment]) -> String {
    segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "{}\n{} --> {}\n{}\n\n",
                i + 1,
                clock(s.start, ','),
                clock(s.end, ','),
                s.text.trim()
            )
        })
        .collect()
}

/// WebVTT: the `WEBVTT` header, then `00:00:01.500 --> 00:00:03.000` cues.
pub fn vtt(segments: &[Segment]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for s in segments {
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            clock(s.start, '.'),
            clock(s.end, '.'),
            s.text.trim()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_carry_hours_and_milliseconds() {
        assert_eq!(clock(0.0, ','), "00:00:00,000");
        assert_eq!(clock(3661.5004, '.'), "01:01:01.500");
        assert_eq!(clock(59.9996, ','), "00:01:00,000");
    }
}
