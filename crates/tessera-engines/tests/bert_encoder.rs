//! `BertEncoder` on real weights: MiniLM f32 safetensors.

mod common;

use common::{HIDDEN, IDS, LENGTHS, batch, max_diff, model_file};
use tessera_engines::candle::BertEncoder;
use tessera_engines::{Device, EngineError};

fn load() -> BertEncoder {
    BertEncoder::load(
        &model_file("all-minilm-l6-v2", "model.safetensors"),
        &model_file("all-minilm-l6-v2", "config.json"),
        Device::Cpu,
    )
    .expect("load MiniLM")
}

#[test]
fn returns_the_last_hidden_state_of_a_padded_batch() {
    let encoder = load();
    assert_eq!(encoder.hidden_size(), HIDDEN);
    assert_eq!(encoder.device(), Device::Cpu);
    let (ids, type_ids, mask) = batch();
    let padded_len = IDS[0].len();
    let batched = encoder
        .forward(&ids, &type_ids, &mask, 2, padded_len)
        .unwrap();
    assert_eq!(batched.len(), 2 * padded_len * HIDDEN);

    let len = LENGTHS[1];
    let row = |v: &[u32]| v[padded_len..padded_len + len].to_vec();
    let alone = encoder
        .forward(&row(&ids), &row(&type_ids), &row(&mask), 1, len)
        .unwrap();
    let padded = &batched[padded_len * HIDDEN..(padded_len + len) * HIDDEN];
    assert!(
        max_diff(padded, &alone) < 1e-4,
        "{}",
        max_diff(padded, &alone)
    );
}

#[test]
fn mismatched_lengths_are_an_input_error() {
    let encoder = load();
    let error = encoder
        .forward(&[101, 102], &[0, 0], &[1], 1, 2)
        .unwrap_err();
    assert!(matches!(error, EngineError::Input { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("attention_mask"), "{message}");
    assert!(message.contains("model.safetensors"), "{message}");
}

#[test]
fn the_device_after_fallback_is_reported() {
    // No accelerator is compiled into the default build: anything falls back to the CPU.
    if !cfg!(feature = "cuda") {
        assert_eq!(
            tessera_engines::candle::device(Device::Cuda).unwrap(),
            Device::Cpu
        );
        assert_eq!(
            tessera_engines::candle::device(Device::Auto).unwrap(),
            Device::Cpu
        );
    }
}
