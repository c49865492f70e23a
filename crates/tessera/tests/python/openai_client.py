"""The official OpenAI Python client against a running `tessera serve`.

Usage: python3 openai_client.py BASE_URL MODEL
Exits non-zero (with the reason) if the client cannot get sensible vectors.
"""

import base64
import math
import struct
import sys

import openai

base_url, model = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused-by-tessera")

response = client.embeddings.create(
    model=model,
    input=["A man is playing a guitar.", "Someone strums a guitar.", "The stock market fell."],
)
vectors = [item.embedding for item in response.data]
assert len(vectors) == 3 and all(len(v) == 384 for v in vectors), response
assert response.usage.prompt_tokens == response.usage.total_tokens > 0, response.usage


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


related, unrelated = cosine(vectors[0], vectors[1]), cosine(vectors[0], vectors[2])
assert related > unrelated + 0.2, (related, unrelated)

# The client asks for base64 by default when numpy is absent; ask explicitly too.
raw = client.embeddings.with_raw_response.create(model=model, input="hello", encoding_format="base64")
encoded = raw.http_response.json()["data"][0]["embedding"]
decoded = struct.unpack(f"<{len(base64.b64decode(encoded)) // 4}f", base64.b64decode(encoded))
assert len(decoded) == 384

try:
    client.embeddings.create(model="no-such-model", input="hi")
    raise SystemExit("an unknown model must fail")
except openai.NotFoundError as error:
    assert "no-such-model" in str(error), error

print(f"ok related={related:.3f} unrelated={unrelated:.3f}")
