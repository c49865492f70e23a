//! The stand-in for `tessera speak --play` and `tessera voice --mic` in a build without the `play`
//! feature: the flags do not exist there, and this says how to get them should anything still ask.

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

    pub fn clear(&self) {
        match *self {}
    }
}

/// No audio input in this build.
pub enum Microphone {}

impl Microphone {
    pub fn open(_sample_rate: u32) -> anyhow::Result<Microphone> {
        bail!(
            "this tessera was built without audio input; rebuild with `cargo build --features play` (Linux needs libasound2-dev)"
        )
    }

    pub fn read(&mut self) -> anyhow::Result<Vec<f32>> {
        match *self {}
    }
}
