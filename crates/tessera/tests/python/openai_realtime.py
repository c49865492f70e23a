"""The official OpenAI Python client's realtime interface against tessera's /v1/realtime: a spoken
question (24 kHz PCM16) streamed in 20 ms frames at real-time pace, the input transcript, the
answer's transcript and audio.

Usage: openai_realtime.py BASE_URL QUESTION.pcm
Prints `ok <the answer's transcript>`.
"""

import base64
import sys
import time

from openai import OpenAI

base, question = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=f"{base}/v1", api_key="not-needed")
pcm = open(question, "rb").read()
frame = 24_000 // 50 * 2

with client.realtime.connect(model="gpt-realtime") as connection:
    created = connection.recv()
    assert created.type == "session.created", created.type
    connection.session.update(
        session={
            "type": "realtime",
            "instructions": "You are a helpful assistant.",
            "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}},
        }
    )
    started = time.monotonic()
    silence = bytes(24_000 // 1000 * 2 * 900)
    for i, start in enumerate(range(0, len(pcm) + len(silence), frame)):
        chunk = (pcm + silence)[start : start + frame]
        connection.input_audio_buffer.append(audio=base64.b64encode(chunk).decode())
        time.sleep(max(0.0, started + 0.02 * (i + 1) - time.monotonic()))

    seen, heard, transcript, audio_bytes = [], "", "", 0
    for event in connection:
        seen.append(event.type)
        if event.type == "error":
            raise SystemExit(f"error event: {event.error.message}")
        if event.type == "conversation.item.input_audio_transcription.completed":
            heard = event.transcript
        elif event.type == "response.output_audio_transcript.delta":
            transcript += event.delta
        elif event.type == "response.output_audio.delta":
            audio_bytes += len(base64.b64decode(event.delta))
        elif event.type == "response.done":
            assert event.response.status == "completed", event.response.status
            break

for kind in ["session.updated", "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
             "input_audio_buffer.committed", "response.created", "response.output_audio.delta"]:
    assert kind in seen, (kind, seen)
assert "capital" in heard.lower(), heard
assert audio_bytes > 24_000, audio_bytes
print(f"ok {transcript}")
