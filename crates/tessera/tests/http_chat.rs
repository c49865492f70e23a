//! LLMs over HTTP: chat, completions, fill-in-the-middle, tools, structured output, streaming,
//! continuous batching and the prefix cache, on the two real GGUF models of the catalog.

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::{Reply, Server, assert_error};
use serde_json::{Value, json};

const SMOL: &str = "smollm2-135m-instruct";
const QWEN: &str = "qwen2.5-coder-0.5b-instruct";

fn chat(server: &Server, body: Value) -> Reply {
    server.post("/v1/chat/completions", &body)
}

fn answer(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn ask(model: &str, question: &str) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": question}],
        "temperature": 0,
        "max_tokens": 48,
    })
}

/// The `data:` payloads of an SSE body, `[DONE]` included.
fn sse_data(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

/// The text of a streamed chat answer, and its chunks as JSON.
fn streamed_chat(server: &Server, mut body: Value) -> (String, Vec<Value>) {
    body["stream"] = json!(true);
    let reply = server.post("/v1/chat/completions", &body);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "{:?}",
        reply.headers
    );
    let data = sse_data(&reply.text);
    assert_eq!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "{}",
        reply.text
    );
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("a JSON chunk"))
        .collect();
    let text = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    (text, chunks)
}

#[test]
fn both_models_answer_factual_questions_greedily() {
    let server = Server::start(&["--preload", ""]);
    for (model, question, expected) in [
        (
            SMOL,
            "What is the capital of France? Answer in one word.",
            "Paris",
        ),
        (
            QWEN,
            "What is the capital of France? Answer in one word.",
            "Paris",
        ),
        (
            QWEN,
            "What color is the sky on a clear day? One word.",
            "Blue",
        ),
    ] {
        let reply = chat(&server, ask(model, question));
        let text = answer(&reply);
        assert!(
            text.contains(expected),
            "{model}: `{text}` lacks {expected}"
        );
        let usage = &reply.body["usage"];
        // Exact usage: the prompt as the template renders it, counted by the tokenizer.
        let tokens = server.post(
            "/v1/tokenize",
            &json!({"model": model, "messages": [{"role": "user", "content": question}]}),
        );
        assert_eq!(tokens.status, 200, "{}", tokens.text);
        assert_eq!(usage["prompt_tokens"], tokens.body["count"], "{model}");
        assert_eq!(
            usage["total_tokens"].as_u64(),
            Some(
                usage["prompt_tokens"].as_u64().unwrap()
                    + usage["completion_tokens"].as_u64().unwrap()
            )
        );
        assert_eq!(
            reply.body["choices"][0]["finish_reason"], "stop",
            "{}",
            reply.text
        );
    }
}

#[test]
fn streams_equal_plain_answers_and_stops_cut_exactly() {
    let server = Server::start(&["--preload", ""]);
    let request = json!({
        "model": SMOL,
        "messages": [{"role": "user", "content": "Write two sentences about the sea."}],
        "temperature": 0.8,
        "seed": 7,
        "max_tokens": 40,
    });
    let plain = answer(&chat(&server, request.clone()));
    let mut with_usage = request.clone();
    with_usage["stream_options"] = json!({"include_usage": true});
    let (streamed, chunks) = streamed_chat(&server, with_usage);
    assert_eq!(streamed, plain, "the same seed streams the same text");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"].is_string()),
        "a chunk carries the finish reason"
    );
    // The same seed gives the same output; another seed (at this temperature) another one.
    assert_eq!(answer(&chat(&server, request.clone())), plain);

    // max_tokens ends with `length`.
    let mut short = request.clone();
    short["max_tokens"] = json!(3);
    let reply = chat(&server, short);
    assert_eq!(
        reply.body["choices"][0]["finish_reason"], "length",
        "{}",
        reply.text
    );
    assert_eq!(reply.body["usage"]["completion_tokens"], 3);
    let mut newer = request.clone();
    newer["max_completion_tokens"] = json!(2);
    assert_eq!(chat(&server, newer).body["usage"]["completion_tokens"], 2);

    // Stops: cut before the stop text, which is never sent; one that spans tokens too.
    let words: Vec<&str> = plain.split_whitespace().collect();
    assert!(words.len() > 4, "`{plain}`");
    let stop_word = words[3];
    let cut = plain.find(stop_word).unwrap();
    let mut stopped = request.clone();
    stopped["stop"] = json!(["\u{1F600}never", stop_word]);
    let reply = chat(&server, stopped.clone());
    assert_eq!(answer(&reply), plain[..cut], "cut before `{stop_word}`");
    assert_eq!(reply.body["choices"][0]["finish_reason"], "stop");
    let (streamed, _) = streamed_chat(&server, stopped);
    assert_eq!(streamed, plain[..cut]);
    // A stop made of the end of one word and the start of the next crosses a token boundary.
    let spanning = format!("{} {}", &words[1][words[1].len() - 1..], &words[2][..1]);
    let at = plain.find(&spanning).unwrap();
    let mut across = request.clone();
    across["stop"] = json!(spanning);
    assert_eq!(answer(&chat(&server, across)), plain[..at]);
}

#[test]
fn json_schema_output_validates() {
    let server = Server::start(&["--preload", ""]);
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "pets": {"type": "array", "maxItems": 3, "items": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "enum": ["cat", "dog", "fish"]},
                    "name": {"type": "string"}
                },
                "required": ["kind", "name"]
            }},
            "address": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        },
        "required": ["name", "age", "pets", "address"]
    });
    for model in [SMOL, QWEN] {
        let reply = chat(
            &server,
            json!({
                "model": model,
                "messages": [{"role": "user", "content": "Describe Alice, 30, from Paris, who has a cat named Tom, as JSON."}],
                "temperature": 0,
                "max_tokens": 300,
                "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
            }),
        );
        let text = answer(&reply);
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{model}: `{text}` is not JSON: {e}"));
        assert!(value["name"].is_string(), "{text}");
        assert!(value["age"].is_i64(), "{text}");
        assert!(value["address"]["city"].is_string(), "{text}");
        for pet in value["pets"].as_array().expect("pets") {
            assert!(
                ["cat", "dog", "fish"].contains(&pet["kind"].as_str().unwrap()),
                "{text}"
            );
            assert!(pet["name"].is_string(), "{text}");
        }
        let reply = chat(
            &server,
            json!({
                "model": model,
                "messages": [{"role": "user", "content": "Return a JSON object with the keys \"city\" and \"celsius\" for Paris at 21 degrees."}],
                "temperature": 0,
                "max_tokens": 150,
                "response_format": {"type": "json_object"},
            }),
        );
        let text = answer(&reply);
        assert!(
            serde_json::from_str::<Value>(&text).is_ok_and(|v| v.is_object()),
            "{model}: `{text}`"
        );
    }
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city"}}, "required": ["city"]}
    }})
}

#[test]
fn qwen_calls_a_tool_and_uses_its_result() {
    let server = Server::start(&["--preload", ""]);
    let question =
        json!({"role": "user", "content": "What is the weather like in Paris right now?"});
    let reply = chat(
        &server,
        json!({
            "model": QWEN,
            "messages": [question],
            "tools": [weather_tool()],
            "temperature": 0,
            "max_tokens": 100,
        }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let choice = &reply.body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{}", reply.text);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap())
        .expect("JSON arguments");
    assert!(
        arguments["city"].as_str().unwrap().contains("Paris"),
        "{arguments}"
    );

    // The tool's answer goes back, and the model uses it.
    let id = call["id"].as_str().unwrap();
    let follow = chat(
        &server,
        json!({
            "model": QWEN,
            "messages": [
                question,
                {"role": "assistant", "content": null, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": id, "content": "{\"temperature_celsius\": 23, \"sky\": \"sunny\"}"}
            ],
            "tools": [weather_tool()],
            "temperature": 0,
            "max_tokens": 60,
        }),
    );
    let text = answer(&follow);
    assert!(
        text.contains("23"),
        "the answer uses the tool's result: `{text}`"
    );

    // Streamed: the call arrives as a tool-call delta.
    let (_, chunks) = streamed_chat(
        &server,
        json!({
            "model": QWEN,
            "messages": [question],
            "tools": [weather_tool()],
            "temperature": 0,
            "max_tokens": 100,
        }),
    );
    let delta = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array().cloned())
        .expect("a tool-call delta");
    assert_eq!(delta[0]["function"]["name"], "get_weather");
    assert_eq!(delta[0]["index"], 0);
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls")
    );

    // A forced call to a named function, even when the question needs none.
    let reply = chat(
        &server,
        json!({
            "model": QWEN,
            "messages": [{"role": "user", "content": "Hello!"}],
            "tools": [weather_tool()],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "temperature": 0,
            "max_tokens": 60,
        }),
    );
    assert_eq!(
        reply.body["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather",
        "{}",
        reply.text
    );
    // tool_choice none: plain text.
    let reply = chat(
        &server,
        json!({
            "model": QWEN,
            "messages": [question],
            "tools": [weather_tool()],
            "tool_choice": "none",
            "temperature": 0,
            "max_tokens": 30,
        }),
    );
    assert_eq!(reply.status, 200);
    assert!(
        reply.body["choices"][0]["message"]["tool_calls"].is_null(),
        "{}",
        reply.text
    );
}

#[test]
fn fill_in_the_middle_writes_a_body_that_parses() {
    let server = Server::start(&["--preload", ""]);
    let prefix = "def is_even(number):\n    \"\"\"Return True when number is even.\"\"\"\n    ";
    let suffix = "\n\nprint(is_even(4))\n";
    let reply = server.post(
        "/v1/completions",
        &json!({
            "model": QWEN, "prompt": prefix, "suffix": suffix, "max_tokens": 64, "temperature": 0,
        }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let middle = reply.body["choices"][0]["text"].as_str().unwrap();
    let source = format!("{prefix}{middle}{suffix}");
    let parsed = std::process::Command::new("python3")
        .args(["-c", "import ast, sys; ast.parse(sys.stdin.read())"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(source.as_bytes())?;
            child.wait()
        })
        .expect("python3");
    assert!(parsed.success(), "does not parse:\n{source}");
    assert!(middle.contains("return"), "`{middle}`");

    // A model without FIM tokens says so.
    let reply = server.post(
        "/v1/completions",
        &json!({"model": SMOL, "prompt": "a", "suffix": "b"}),
    );
    assert_error(&reply, 400, "fill-in-the-middle");
    assert_eq!(reply.body["error"]["param"], "suffix");

    // Plain completion, streamed and not, with the OpenAI default of 16 tokens.
    let reply = server.post(
        "/v1/completions",
        &json!({"model": SMOL, "prompt": "The capital of France is", "temperature": 0}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["object"], "text_completion");
    assert_eq!(reply.body["usage"]["completion_tokens"], 16);
    let plain = reply.body["choices"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(plain.contains("Paris"), "`{plain}`");
    let reply = server.post("/v1/completions", &json!({"model": SMOL, "prompt": "The capital of France is", "temperature": 0, "stream": true}));
    let text: String = sse_data(&reply.text)
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["choices"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(text, plain);
}

#[test]
fn tokenize_and_detokenize_round_trip() {
    let server = Server::start(&["--preload", ""]);
    let reply = server.post(
        "/v1/tokenize",
        &json!({"model": SMOL, "prompt": "Hello world", "with_pieces": true}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let tokens = reply.body["tokens"].clone();
    assert_eq!(reply.body["count"], tokens.as_array().unwrap().len());
    assert_eq!(
        reply.body["pieces"].as_array().unwrap().concat_strings(),
        "Hello world"
    );
    let back = server.post("/v1/detokenize", &json!({"model": SMOL, "tokens": tokens}));
    assert_eq!(back.body["prompt"], "Hello world", "{}", back.text);
    // With the chat template: the special tokens of the template are there.
    let reply = server.post("/v1/tokenize", &json!({"model": SMOL, "messages": [{"role": "user", "content": "Hi"}], "with_pieces": true}));
    let pieces = reply.body["pieces"].as_array().unwrap().concat_strings();
    assert!(
        pieces.contains("<|im_start|>user") && pieces.ends_with("<|im_start|>assistant\n"),
        "{pieces}"
    );
    // An id outside the vocabulary.
    let reply = server.post(
        "/v1/detokenize",
        &json!({"model": SMOL, "tokens": [1, 99999999]}),
    );
    assert_error(&reply, 400, "99999999");
}

trait ConcatStrings {
    fn concat_strings(&self) -> String;
}

impl ConcatStrings for Vec<Value> {
    fn concat_strings(&self) -> String {
        self.iter().filter_map(Value::as_str).collect()
    }
}

#[test]
fn bad_requests_say_what_to_fix_and_the_server_keeps_serving() {
    let server = Server::start(&["--preload", "", "--ctx-size", "512"]);
    let user = json!([{"role": "user", "content": "Hi"}]);
    for (body, status, needle, param) in [
        (
            json!({"model": SMOL, "messages": []}),
            400,
            "`messages` is empty",
            "messages",
        ),
        (
            json!({"model": SMOL, "messages": [{"role": "wizard", "content": "x"}]}),
            400,
            "role is `wizard`",
            "messages",
        ),
        (
            json!({"model": SMOL, "messages": [{"role": "user", "content": 42}]}),
            400,
            "content is a number",
            "messages",
        ),
        (
            json!({"model": SMOL, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            400,
            "text only",
            "messages",
        ),
        (
            json!({"model": SMOL, "messages": user, "max_tokens": 100000}),
            400,
            "context",
            "max_tokens",
        ),
        (
            json!({"model": SMOL, "messages": user, "n": 2}),
            400,
            "`n` is 2",
            "n",
        ),
        (
            json!({"model": SMOL, "messages": user, "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object", "properties": {"a": {"type": "no-such-type"}}}}}}),
            400,
            "schema",
            "response_format",
        ),
        (
            json!({"model": SMOL, "messages": user, "tools": [weather_tool()], "tool_choice": {"type": "function", "function": {"name": "missing"}}}),
            400,
            "`missing`",
            "tool_choice",
        ),
        (
            json!({"model": SMOL, "messages": user, "temperature": 5}),
            400,
            "temperature",
            "temperature",
        ),
        (
            json!({"model": "no-such-model", "messages": user}),
            404,
            "no-such-model",
            "model",
        ),
        (
            json!({"model": "all-minilm-l6-v2-int8", "messages": user}),
            400,
            "embed",
            "model",
        ),
    ] {
        let reply = chat(&server, body.clone());
        assert_error(&reply, status, needle);
        assert_eq!(
            reply.body["error"]["param"], param,
            "{body}: {}",
            reply.text
        );
    }
    // A prompt longer than the context states both sizes.
    let long = "word ".repeat(2000);
    let reply = chat(
        &server,
        json!({"model": SMOL, "messages": [{"role": "user", "content": long}]}),
    );
    assert_error(&reply, 400, "context");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("512"),
        "{}",
        reply.text
    );
    // Still serving.
    assert!(!answer(&chat(&server, ask(SMOL, "Say hello."))).is_empty());
}

/// Starts a streamed chat and returns the reader of its body.
fn open_stream(server: &Server, body: &Value) -> BufReader<Box<dyn std::io::Read + Send>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .post(&server.url("/v1/chat/completions"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .expect("request");
    assert_eq!(response.status(), 200);
    BufReader::new(Box::new(response.into_body().into_reader()))
}

#[test]
fn concurrent_streams_match_their_lone_answers_and_a_disconnect_frees_its_sequence() {
    let server = Server::start(&["--preload", "", "--parallel", "8"]);
    // Questions with one clear answer: greedy decoding then does not hinge on the last bits of
    // a float, which differ between a batch of one and a batch of eight.
    let questions: Vec<String> = [
        "France", "Germany", "Italy", "Spain", "Japan", "Egypt", "Canada", "Russia",
    ]
    .iter()
    .map(|country| format!("What is the capital of {country}? Answer with the city only."))
    .collect();
    let request = |q: &str| json!({"model": QWEN, "messages": [{"role": "user", "content": q}], "temperature": 0, "max_tokens": 12});
    let alone: Vec<String> = questions
        .iter()
        .map(|q| answer(&chat(&server, request(q))))
        .collect();
    let together: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = questions
            .iter()
            .map(|q| {
                let body = request(q);
                let server = &server;
                scope.spawn(move || streamed_chat(server, body).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        together, alone,
        "8 concurrent streams give what each gives alone"
    );

    // A client that leaves mid-stream frees its sequence at once.
    let metric = format!("tessera_llm_sequences{{model=\"{SMOL}\"}}");
    let mut reader = open_stream(
        &server,
        &json!({"model": SMOL, "messages": [{"role": "user", "content": "Count from 1 to 1000."}], "max_tokens": 2000, "stream": true}),
    );
    let mut line = String::new();
    while !line.starts_with("data: ") {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    assert_eq!(server.metric(&metric), 1.0);
    drop(reader);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.metric(&metric) != 0.0 {
        assert!(Instant::now() < deadline, "the sequence was not freed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_turn_reuses_the_cached_prefix() {
    let server = Server::start(&["--preload", ""]);
    let system = json!({"role": "system", "content": "You are a helpful assistant who answers briefly and precisely, always in English, and never with more than one sentence."});
    let first_question = json!({"role": "user", "content": "What is the capital of Italy?"});
    let first = chat(
        &server,
        json!({"model": SMOL, "messages": [system, first_question], "temperature": 0, "max_tokens": 20}),
    );
    let first_answer = answer(&first);
    assert_eq!(
        first.body["usage"]["prompt_tokens_details"]["cached_tokens"], 0,
        "{}",
        first.text
    );
    let second = chat(
        &server,
        json!({
            "model": SMOL,
            "messages": [system, first_question, {"role": "assistant", "content": first_answer}, {"role": "user", "content": "And of Spain?"}],
            "temperature": 0, "max_tokens": 20,
        }),
    );
    assert_eq!(second.status, 200, "{}", second.text);
    let cached = second.body["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    let prompt = first.body["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(
        cached >= prompt,
        "the second turn reuses at least the first prompt: {cached} < {prompt}"
    );
}
