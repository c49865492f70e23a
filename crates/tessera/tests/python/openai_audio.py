"""The official OpenAI Python client against tessera's audio routes: speech (plain, streamed, MP3),
transcriptions (json, verbose_json, srt) and translations.

Usage: openai_audio.py BASE_URL VOICE
"""

import struct
import sys

from openai import OpenAI

base, voice = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=f"{base}/v1", api_key="not-needed")
text = "The quick brown fox jumps over the lazy dog. Then it takes a long nap in the sun."

# Plain: the whole WAV.
speech = client.audio.speech.create(model=voice, voice="alloy", input=text, response_format="wav")
data = speech.content
assert data[:4] == b"RIFF", data[:16]
pcm = data[44:]
seconds = len(pcm) / 2 / 22050
assert 2.5 < seconds < 12, seconds
loudest = max(abs(s) for (s,) in struct.iter_unpack("<h", pcm[: len(pcm) // 2 * 2]))
assert loudest > 3000, f"near silence: peak {loudest}"

# Streamed: raw PCM read chunk by chunk as it is synthesized.
chunks = []
with client.audio.speech.with_streaming_response.create(
    model=voice, voice="alloy", input=text, response_format="pcm", speed=1.25
) as response:
    assert response.headers["content-type"] == "audio/pcm", response.headers
    for chunk in response.iter_bytes(4096):
        chunks.append(chunk)
streamed = b"".join(chunks)
assert len(chunks) > 1, len(chunks)
faster = len(streamed) / 2 / 22050
assert 0.6 * seconds < faster < 0.95 * seconds, (faster, seconds)

# Streamed MP3 (OpenAI's default format): frames as the speech is made, 64 kbit/s.
mp3_chunks = []
with client.audio.speech.with_streaming_response.create(
    model=voice, voice="alloy", input=text, response_format="mp3"
) as response:
    assert response.headers["content-type"] == "audio/mpeg", response.headers
    for chunk in response.iter_bytes(4096):
        mp3_chunks.append(chunk)
mp3 = b"".join(mp3_chunks)
assert mp3[0] == 0xFF and mp3[1] & 0xE0 == 0xE0, mp3[:4]
assert 0.6 * seconds * 8000 < len(mp3) < 1.4 * seconds * 8000 + 4000, (len(mp3), seconds)

# A bad request raises the client's error with tessera's message.
try:
    client.audio.speech.create(model=voice, voice="alloy", input="", response_format="wav")
    raise SystemExit("an empty input was accepted")
except Exception as error:  # openai.BadRequestError
    assert "`input` is empty" in str(error), error

print(f"ok speech {seconds:.1f} s, streamed {faster:.1f} s in {len(chunks)} chunks, mp3 {len(mp3)} bytes")

# Transcription of a LibriVox clip: json, verbose_json with words, srt.
import pathlib

clip = pathlib.Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav")
with clip.open("rb") as audio:
    result = client.audio.transcriptions.create(model="whisper-base", file=audio)
assert "not an ill" in result.text.lower(), result.text

with clip.open("rb") as audio:
    verbose = client.audio.transcriptions.create(
        model="whisper-base",
        file=audio,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
assert verbose.language == "english", verbose.language
assert 2.5 < verbose.duration < 3.5, verbose.duration
assert verbose.segments and verbose.segments[0].end <= verbose.duration + 0.01, verbose.segments
assert [w.word.lower().strip(".") for w in verbose.words][:3] == ["he", "was", "not"], verbose.words

with clip.open("rb") as audio:
    srt = client.audio.transcriptions.create(model="whisper-base", file=audio, response_format="srt")
assert srt.startswith("1\n00:00:0"), srt
assert " --> " in srt, srt

# Translation of English speech is the English text.
with clip.open("rb") as audio:
    translated = client.audio.translations.create(model="whisper-base", file=audio)
assert "young man" in translated.text.lower(), translated.text

# A bad upload raises the client's error with tessera's message.
try:
    client.audio.transcriptions.create(model="whisper-base", file=("empty.wav", b""))
    raise SystemExit("an empty upload was accepted")
except Exception as error:  # openai.BadRequestError
    assert "empty" in str(error), error

print(f"ok transcription `{result.text}`, {len(verbose.words)} words, srt {len(srt)} bytes")
