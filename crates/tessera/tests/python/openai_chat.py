"""The official OpenAI Python client against tessera's LLM routes: chat, streamed chat, tools,
json_schema and completions. Prints `ok ...` on success; any failed check raises.

    python3 openai_chat.py BASE_URL CHAT_MODEL TOOL_MODEL
"""

import json
import sys

import jsonschema
from openai import OpenAI

base, model, tool_model = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenAI(base_url=base + "/v1", api_key="unused")

question = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
reply = client.chat.completions.create(model=model, messages=question, temperature=0, max_tokens=20)
text = reply.choices[0].message.content
assert "Paris" in text, text
assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0, reply.usage
assert reply.choices[0].finish_reason == "stop", reply

stream = client.chat.completions.create(
    model=model, messages=question, temperature=0, max_tokens=20, stream=True,
    stream_options={"include_usage": True},
)
pieces, usage = [], None
for chunk in stream:
    if chunk.usage:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
assert "".join(pieces) == text, ("".join(pieces), text)
assert usage is not None and usage.completion_tokens == reply.usage.completion_tokens, usage

tools = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]
reply = client.chat.completions.create(
    model=tool_model, temperature=0, max_tokens=100, tools=tools,
    messages=[{"role": "user", "content": "What is the weather in Berlin?"}],
)
call = reply.choices[0].message.tool_calls[0]
assert reply.choices[0].finish_reason == "tool_calls", reply
assert call.function.name == "get_weather", call
assert "Berlin" in json.loads(call.function.arguments)["city"], call

schema = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "genres": {"type": "array", "items": {"type": "string", "enum": ["drama", "comedy", "action"]}},
    },
    "required": ["title", "year", "genres"],
}
reply = client.chat.completions.create(
    model=model, temperature=0, max_tokens=120,
    messages=[{"role": "user", "content": "Describe a famous film as JSON."}],
    response_format={"type": "json_schema", "json_schema": {"name": "film", "schema": schema}},
)
jsonschema.validate(json.loads(reply.choices[0].message.content), schema)

completion = client.completions.create(model=model, prompt="The capital of France is", max_tokens=8, temperature=0)
assert "Paris" in completion.choices[0].text, completion

try:
    client.chat.completions.create(model=model, messages=[], max_tokens=5)
    raise AssertionError("an empty conversation was accepted")
except Exception as error:  # openai.BadRequestError
    assert getattr(error, "status_code", None) == 400, error

print("ok", text.strip())
