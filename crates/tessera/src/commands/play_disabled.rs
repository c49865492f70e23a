//! The stand-in for `tessera speak --play` in a build without the `play` feature: the flag does
//! not exist there, and this says how to get it should anything still ask for a player.

use anyhow::bail;

/// No audio output in this build.
pub enum Player {}

impl Player {
    pub fn open(_sample_rate: u32) -> anyhow::Result<Player> {
        bail!(
            "this tessera was built without audio playback; rebuild with `cargo build --features play` (Linux needs libasound2-dev)"
        )
    }

    pub fn push(&mut self, _samples: &[f32]) -> anyhow::Result<()> {
        match *self {}
    }

    pub fn finish(self) -> anyhow::Result<()> {
        match self {}
    }
}
