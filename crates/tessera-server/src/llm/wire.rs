//! Parsing of the OpenAI request fields chat and completions share, with errors that name the
//! field and say what to send.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use tessera_tasks::chat::{ChatMessage, Role, ToolCall, ToolSpec};
use tessera_tasks::llm::{ResponseFormat, Sampling, ToolChoice};
use utoipa::ToSchema;

use crate::ApiError;
pub(crate) use crate::extract::kind;

/// `stream_options`.
#[derive(Debug, Default, Clone, Copy, Deserialize, ToSchema)]
pub(crate) struct StreamOptions {
    /// Send one more chunk before `[DONE]` with the usage of the whole request.
    #[serde(default)]
    pub include_usage: bool,
}

/// The sampling fields of a request, shared by chat and completions.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct SamplingFields {
    /// 0 to 2; 0 always picks the most likely token. Default 1.
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f32>,
    /// Nucleus sampling, 0 to 1. Default 1.
    #[schema(minimum = 0, maximum = 1)]
    pub top_p: Option<f32>,
    /// tessera's: keep only the k most likely tokens (0 keeps all).
    #[schema(minimum = 0)]
    pub top_k: Option<i32>,
    /// tessera's: drop tokens less likely than `min_p` times the most likely one.
    #[schema(minimum = 0, maximum = 1)]
    pub min_p: Option<f32>,
    /// tessera's: multiplicative penalty on repeated tokens (1 is off).
    #[schema(minimum = 0)]
    pub repetition_penalty: Option<f32>,
    /// -2 to 2: lowers tokens by how often they were generated.
    #[schema(minimum = -2, maximum = 2)]
    pub frequency_penalty: Option<f32>,
    /// -2 to 2: lowers tokens that were generated at all.
    #[schema(minimum = -2, maximum = 2)]
    pub presence_penalty: Option<f32>,
    /// The same seed and request give the same output.
    pub seed: Option<i64>,
    /// Token id (as a string) to a bias from -100 to 100 added to its logit.
    #[schema(value_type = Option<HashMap<String, f32>>)]
    pub logit_bias: Option<HashMap<String, f32>>,
    /// Up to 16 strings that end the output; they are not included.
    #[schema(value_type = Option<Object>)]
    pub stop: Option<Value>,
    /// How many answers; only 1 is supported.
    #[schema(minimum = 1, maximum = 1)]
    pub n: Option<u32>,
}

fn range(param: &'static str, value: Option<f32>, low: f32, high: f32) -> Result<(), ApiError> {
    match value {
        Some(v) if !(low..=high).contains(&v) || v.is_nan() => Err(ApiError::bad_request(format!(
            "`{param}` is {v}; it must be between {low} and {high}"
        ))
        .param(param)),
        _ => Ok(()),
    }
}

impl SamplingFields {
    /// The task's sampling settings; out-of-range values are 400s naming the field.
    pub(crate) fn sampling(&self) -> Result<Sampling, ApiError> {
        if let Some(n) = self.n
            && n != 1
        {
            return Err(ApiError::bad_request(format!(
                "`n` is {n}, but tessera generates one choice per request for now; send n = 1 and make several requests"
            ))
            .param("n"));
        }
        range("temperature", self.temperature, 0.0, 2.0)?;
        range("top_p", self.top_p, 0.0, 1.0)?;
        range("min_p", self.min_p, 0.0, 1.0)?;
        range("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?;
        range("presence_penalty", self.presence_penalty, -2.0, 2.0)?;
        range("repetition_penalty", self.repetition_penalty, 0.0, 10.0)?;
        if let Some(k) = self.top_k
            && k < 0
        {
            return Err(
                ApiError::bad_request(format!("`top_k` is {k}; send 0 (all) or more"))
                    .param("top_k"),
            );
        }
        let mut logit_bias = Vec::new();
        for (key, &bias) in self.logit_bias.iter().flatten() {
            let token: i32 = key.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "logit_bias key `{key}` is not a token id; keys are token ids as strings, such as \"1234\""
                ))
                .param("logit_bias")
            })?;
            range("logit_bias", Some(bias), -100.0, 100.0)?;
            logit_bias.push((token, bias));
        }
        logit_bias.sort_by_key(|&(t, _)| t);
        let defaults = Sampling::default();
        Ok(Sampling {
            temperature: self.temperature.unwrap_or(defaults.temperature),
            top_p: self.top_p.unwrap_or(defaults.top_p),
            top_k: self.top_k.unwrap_or(defaults.top_k),
            min_p: self.min_p.unwrap_or(defaults.min_p),
            repetition_penalty: self
                .repetition_penalty
                .unwrap_or(defaults.repetition_penalty),
            frequency_penalty: self.frequency_penalty.unwrap_or(0.0),
            presence_penalty: self.presence_penalty.unwrap_or(0.0),
            seed: self.seed.map(|s| s as u64),
            logit_bias,
        })
    }

    /// `stop`: a string or an array of strings.
    pub(crate) fn stops(&self) -> Result<Vec<String>, ApiError> {
        let invalid = |message: String| ApiError::bad_request(message).param("stop");
        let stops = match &self.stop {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(invalid(format!(
                        "stop[{i}] is {}; each stop sequence is a string",
                        kind(other)
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(invalid(format!(
                    "`stop` is {}; send a string or an array of strings",
                    kind(other)
                )));
            }
        };
        if stops.len() > 16 {
            return Err(invalid(format!(
                "`stop` has {} sequences; send at most 16",
                stops.len()
            )));
        }
        Ok(stops)
    }
}

/// `messages`: OpenAI's chat messages, checked one by one.
pub(crate) fn parse_messages(messages: &[Value]) -> Result<Vec<ChatMessage>, ApiError> {
    let invalid = |message: String| ApiError::bad_request(message).param("messages");
    if messages.is_empty() {
        return Err(invalid(
            "`messages` is empty; send at least one message, such as {\"role\": \"user\", \"content\": \"Hello\"}".into(),
        ));
    }
    messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            let Value::Object(fields) = message else {
                return Err(invalid(format!(
                    "messages[{i}] is {}; each message is an object with `role` and `content`",
                    kind(message)
                )));
            };
            let role = match fields.get("role") {
                Some(Value::String(role)) => match role.as_str() {
                    "system" => Role::System,
                    "developer" => Role::Developer,
                    "user" => Role::User,
                    "assistant" => Role::Assistant,
                    "tool" => Role::Tool,
                    other => {
                        return Err(invalid(format!(
                            "messages[{i}].role is `{other}`; use system, developer, user, assistant or tool"
                        )));
                    }
                },
                Some(other) => {
                    return Err(invalid(format!(
                        "messages[{i}].role is {}; it is a string: system, developer, user, assistant or tool",
                        kind(other)
                    )));
                }
                None => return Err(invalid(format!("messages[{i}] has no `role`"))),
            };
            let content = match fields.get("content") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => Some(text.clone()),
                Some(Value::Array(parts)) => Some(text_parts(i, parts)?),
                Some(other) => {
                    return Err(invalid(format!(
                        "messages[{i}].content is {}; send a string or an array of text parts",
                        kind(other)
                    )));
                }
            };
            let tool_calls = match fields.get("tool_calls") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(calls)) if role == Role::Assistant => calls
                    .iter()
                    .enumerate()
                    .map(|(j, call)| tool_call(i, j, call))
                    .collect::<Result<_, _>>()?,
                Some(_) if role != Role::Assistant => {
                    return Err(invalid(format!(
                        "messages[{i}] has `tool_calls`, which only assistant messages may have"
                    )));
                }
                Some(other) => {
                    return Err(invalid(format!(
                        "messages[{i}].tool_calls is {}; send an array of tool calls",
                        kind(other)
                    )));
                }
            };
            if content.is_none() && tool_calls.is_empty() {
                return Err(invalid(format!(
                    "messages[{i}] has no content; send `content` as a string"
                )));
            }
            let text_field = |name: &str| match fields.get(name) {
                Some(Value::String(s)) => Ok(Some(s.clone())),
                None | Some(Value::Null) => Ok(None),
                Some(other) => Err(invalid(format!(
                    "messages[{i}].{name} is {}; it is a string",
                    kind(other)
                ))),
            };
            Ok(ChatMessage {
                role,
                content,
                name: text_field("name")?,
                tool_calls,
                tool_call_id: text_field("tool_call_id")?,
            })
        })
        .collect()
}

/// The text of a content array; tessera's LLMs read text only.
fn text_parts(i: usize, parts: &[Value]) -> Result<String, ApiError> {
    let invalid = |message: String| ApiError::bad_request(message).param("messages");
    let mut text = String::new();
    for (j, part) in parts.iter().enumerate() {
        match (part.get("type").and_then(Value::as_str), part.get("text")) {
            (Some("text"), Some(Value::String(t))) => text.push_str(t),
            (Some("text"), _) => {
                return Err(invalid(format!(
                    "messages[{i}].content[{j}] is a text part without a `text` string"
                )));
            }
            (Some(other), _) => {
                return Err(invalid(format!(
                    "messages[{i}].content[{j}] is a `{other}` part; this model reads text only, so send parts of type `text`"
                )));
            }
            (None, _) => {
                return Err(invalid(format!(
                    "messages[{i}].content[{j}] has no `type`; send {{\"type\": \"text\", \"text\": \"...\"}}"
                )));
            }
        }
    }
    Ok(text)
}

fn tool_call(i: usize, j: usize, call: &Value) -> Result<ToolCall, ApiError> {
    let invalid = |message: String| ApiError::bad_request(message).param("messages");
    let function = call
        .get("function")
        .ok_or_else(|| invalid(format!("messages[{i}].tool_calls[{j}] has no `function`")))?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            invalid(format!(
                "messages[{i}].tool_calls[{j}].function has no `name` string"
            ))
        })?;
    let arguments = match function.get("arguments") {
        Some(Value::String(text)) => text.clone(),
        None | Some(Value::Null) => "{}".to_string(),
        // Some clients send the object itself.
        Some(other) => other.to_string(),
    };
    Ok(ToolCall {
        id: call
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        name: name.to_string(),
        arguments,
    })
}

/// `tools`: function tools only.
pub(crate) fn parse_tools(tools: &[Value]) -> Result<Vec<ToolSpec>, ApiError> {
    let invalid = |message: String| ApiError::bad_request(message).param("tools");
    let mut seen = std::collections::HashSet::new();
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            match tool.get("type").and_then(Value::as_str) {
                Some("function") => {}
                Some(other) => {
                    return Err(invalid(format!(
                        "tools[{i}] is of type `{other}`; tessera runs `function` tools"
                    )));
                }
                None => {
                    return Err(invalid(format!(
                        "tools[{i}] has no `type`; send \"function\""
                    )));
                }
            }
            let function = tool
                .get("function")
                .ok_or_else(|| invalid(format!("tools[{i}] has no `function`")))?;
            let name = function
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| invalid(format!("tools[{i}].function has no `name`")))?;
            if !seen.insert(name.to_string()) {
                return Err(invalid(format!(
                    "two tools are named `{name}`; names must differ"
                )));
            }
            let parameters = function.get("parameters").cloned().unwrap_or(Value::Null);
            if !(parameters.is_null() || parameters.is_object()) {
                return Err(invalid(format!(
                    "tools[{i}].function.parameters is {}; send a JSON schema object",
                    kind(&parameters)
                )));
            }
            Ok(ToolSpec {
                name: name.to_string(),
                description: function
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                parameters,
            })
        })
        .collect()
}

/// `tool_choice`: "none", "auto", "required" or `{"type": "function", "function": {"name"}}`.
pub(crate) fn parse_tool_choice(
    choice: Option<&Value>,
    has_tools: bool,
) -> Result<ToolChoice, ApiError> {
    let invalid = |message: String| ApiError::bad_request(message).param("tool_choice");
    let choice = match choice {
        None | Some(Value::Null) => {
            return Ok(if has_tools {
                ToolChoice::Auto
            } else {
                ToolChoice::None
            });
        }
        Some(Value::String(s)) => match s.as_str() {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            other => {
                return Err(invalid(format!(
                    "tool_choice is `{other}`; use none, auto, required or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}"
                )));
            }
        },
        Some(Value::Object(fields)) => {
            let name = fields
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tool_choice names no function: send {\"type\": \"function\", \"function\": {\"name\": ...}}".into()))?;
            ToolChoice::Function(name.to_string())
        }
        Some(other) => {
            return Err(invalid(format!(
                "tool_choice is {}; send a string or an object",
                kind(other)
            )));
        }
    };
    if !has_tools && matches!(choice, ToolChoice::Required | ToolChoice::Function(_)) {
        return Err(invalid(
            "tool_choice asks for a tool call, but no `tools` were given".into(),
        ));
    }
    Ok(choice)
}

/// `response_format`: {"type": "text" | "json_object" | "json_schema", "json_schema": {"schema"}}.
pub(crate) fn parse_response_format(format: Option<&Value>) -> Result<ResponseFormat, ApiError> {
    let invalid = |message: String| ApiError::bad_request(message).param("response_format");
    let Some(format) = format.filter(|f| !f.is_null()) else {
        return Ok(ResponseFormat::Text);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let schema = format
                .get("json_schema")
                .and_then(|s| s.get("schema"))
                .ok_or_else(|| invalid("response_format of type json_schema needs `json_schema.schema`, the JSON schema to follow".into()))?;
            if !schema.is_object() {
                return Err(invalid(format!(
                    "json_schema.schema is {}; send a JSON schema object",
                    kind(schema)
                )));
            }
            Ok(ResponseFormat::JsonSchema(schema.clone()))
        }
        Some(other) => Err(invalid(format!(
            "response_format type `{other}` is unknown; use text, json_object or json_schema"
        ))),
        None => Err(invalid("response_format has no `type`".into())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bad_messages_name_what_to_fix() {
        for (messages, expected) in [
            (json!([]), "`messages` is empty"),
            (
                json!([{"role": "wizard", "content": "hi"}]),
                "messages[0].role is `wizard`",
            ),
            (
                json!([{"role": "user", "content": 5}]),
                "messages[0].content is a number",
            ),
            (
                json!([{"role": "user", "content": [{"type": "image_url"}]}]),
                "reads text only",
            ),
            (json!([{"role": "user"}]), "has no content"),
            (json!(["hi"]), "messages[0] is a string"),
        ] {
            let error = parse_messages(messages.as_array().unwrap()).unwrap_err();
            assert_eq!(error.status(), 400);
            assert!(
                error.message().contains(expected),
                "{} lacks {expected}",
                error.message()
            );
        }
    }

    #[test]
    fn text_parts_and_tool_calls_parse() {
        let messages = parse_messages(
            json!([
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"}
            ])
            .as_array()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(messages[0].content.as_deref(), Some("ab"));
        assert_eq!(messages[1].tool_calls[0].name, "f");
        assert_eq!(messages[2].tool_call_id.as_deref(), Some("c1"));
    }

    #[test]
    fn n_above_one_and_out_of_range_values_are_refused() {
        let fields = SamplingFields {
            n: Some(2),
            ..SamplingFields::default()
        };
        assert!(
            fields
                .sampling()
                .unwrap_err()
                .message()
                .contains("`n` is 2")
        );
        let fields = SamplingFields {
            temperature: Some(3.0),
            ..SamplingFields::default()
        };
        assert!(
            fields
                .sampling()
                .unwrap_err()
                .message()
                .contains("temperature")
        );
    }

    #[test]
    fn tool_choice_needs_tools() {
        assert!(parse_tool_choice(Some(&json!("required")), false).is_err());
        assert_eq!(
            parse_tool_choice(
                Some(&json!({"type": "function", "function": {"name": "f"}})),
                true
            )
            .unwrap(),
            ToolChoice::Function("f".into())
        );
        assert_eq!(parse_tool_choice(None, true).unwrap(), ToolChoice::Auto);
    }
}
