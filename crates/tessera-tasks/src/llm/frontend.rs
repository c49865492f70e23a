//! The caller-side half of an LLM: prompt rendering, tokenization, checks, grammar and sampler.

use serde_json::{Value, json};
use tessera_core::Task;
use tessera_engines::llama::{GgufModel, Token, json_schema_to_grammar};

use super::{GenerateRequest, Generation, Job, Prompt, ResponseFormat, ToolChoice, sampler_config};
use crate::TaskError;
use crate::chat::{ChatTemplate, ToolFormat, ToolSpec};
use crate::registry::{Frontend, Prepared};

/// What a caller may ask about a loaded LLM without generating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Tokens the context holds (prompt plus generation).
    pub context: u32,
    /// Whether `/v1/completions` with `suffix` works.
    pub fill_in_the_middle: bool,
    /// Whether chat requests work (the GGUF has a chat template).
    pub chat: bool,
}

/// A prompt's tokens, the grammar that shapes the output, and how tool calls in the output are
/// written when tools are offered.
type PromptParts = (Vec<Token>, Option<String>, Option<ToolFormat>);

/// The frontend of a GGUF model.
pub struct Generate {
    id: String,
    model: GgufModel,
    template: Option<ChatTemplate>,
    context: u32,
}

impl std::fmt::Debug for Generate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generate")
            .field("id", &self.id)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Generate {
    /// The frontend of `model`, whose context holds `context` tokens. A chat template that does
    /// not compile is an error; a model without one serves completions only.
    pub fn new(id: String, model: GgufModel, context: u32) -> Result<Generate, TaskError> {
        let token_text = |token: Option<Token>| {
            token.map_or_else(String::new, |t| {
                String::from_utf8_lossy(&model.piece(t, true)).into_owned()
            })
        };
        let template = match model.meta("tokenizer.chat_template") {
            Some(source) => Some(
                ChatTemplate::new(&source, &token_text(model.bos()), &token_text(model.eos()))
                    .map_err(|e| TaskError::ModelFile {
                        path: model.path().to_path_buf(),
                        message: format!("its chat template does not compile: {e}"),
                    })?,
            ),
            None => None,
        };
        Ok(Generate {
            id,
            model,
            template,
            context,
        })
    }

    /// The context size and what the model can do.
    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            context: self.context,
            fill_in_the_middle: self.model.fim().is_some(),
            chat: self.template.is_some(),
        }
    }

    /// Every token that ends generation (EOS, EOT, `<|im_end|>` …).
    pub fn end_tokens(&self) -> Vec<Token> {
        (0..self.model.vocab_size())
            .filter(|&t| self.model.is_end_of_generation(t))
            .collect()
    }

    /// Tokens of `text`, special-token text read as those tokens.
    pub fn tokenize(&self, text: &str, add_special: bool) -> Vec<Token> {
        self.model.tokenize(text, add_special, true)
    }

    /// The text of `tokens`; an id outside the vocabulary is an error naming it.
    pub fn detokenize(&self, tokens: &[Token]) -> Result<String, TaskError> {
        if let Some(bad) = tokens.iter().find(|&&t| !self.model.is_token(t)) {
            return Err(TaskError::InvalidParam {
                param: "tokens",
                message: format!(
                    "token {bad} is not in the vocabulary of `{}` (ids 0 to {})",
                    self.id,
                    self.model.vocab_size() - 1
                ),
            });
        }
        Ok(self.model.detokenize(tokens, true))
    }

    /// The text a token stands for (special tokens as their text).
    pub fn token_text(&self, token: Token) -> String {
        String::from_utf8_lossy(&self.model.piece(token, true)).into_owned()
    }

    /// The prompt text a chat renders to.
    pub fn render_chat(
        &self,
        messages: &[crate::chat::ChatMessage],
        tools: &[ToolSpec],
        add_generation_prompt: bool,
    ) -> Result<String, TaskError> {
        let template = self.template.as_ref().ok_or_else(|| TaskError::InvalidParam {
            param: "messages",
            message: format!(
                "model `{}` has no chat template in its GGUF; send a prompt to /v1/completions instead",
                self.id
            ),
        })?;
        template
            .render(messages, tools, add_generation_prompt)
            .map_err(|e| match e {
                crate::chat::TemplateError::Raised(message) => TaskError::InvalidParam {
                    param: "messages",
                    message: format!(
                        "the model's chat template refused the conversation: {message}"
                    ),
                },
                other => TaskError::InvalidParam {
                    param: "messages",
                    message: format!(
                        "the model's chat template failed on this conversation: {other}"
                    ),
                },
            })
    }

    /// The prompt's tokens, the grammar that shapes the output, and how tool calls are written
    /// when tools are offered.
    fn prompt_tokens(&self, prompt: &Prompt) -> Result<PromptParts, TaskError> {
        match prompt {
            Prompt::Chat {
                messages,
                tools,
                tool_choice,
            } => {
                let offered: &[ToolSpec] = if *tool_choice == ToolChoice::None {
                    &[]
                } else {
                    tools
                };
                let text = self.render_chat(messages, offered, true)?;
                let mut tokens = self.model.tokenize(&text, true, true);
                // Templates that write the BOS text themselves would get it twice.
                if let (Some(bos), [first, second, ..]) = (self.model.bos(), tokens.as_slice())
                    && *first == bos
                    && *second == bos
                {
                    tokens.remove(0);
                }
                let format = self
                    .template
                    .as_ref()
                    .map_or(ToolFormat::Generic, ChatTemplate::tool_format);
                let grammar = tool_grammar(tools, tool_choice, format)?;
                // Small models often leave out their template's markers (Qwen writes a bare
                // JSON call without `<tool_call>`), so answers are read in every common format.
                let format = (!offered.is_empty()).then_some(ToolFormat::Generic);
                Ok((tokens, grammar, format))
            }
            Prompt::Text {
                prompt,
                suffix: None,
            } => Ok((self.model.tokenize(prompt, true, true), None, None)),
            Prompt::Text {
                prompt,
                suffix: Some(suffix),
            } => {
                let fim = self.model.fim().ok_or_else(|| TaskError::InvalidParam {
                    param: "suffix",
                    message: format!(
                        "model `{}` has no fill-in-the-middle tokens; leave out `suffix`, or use a code model that has them (such as qwen2.5-coder-0.5b-instruct)",
                        self.id
                    ),
                })?;
                let mut tokens = Vec::new();
                if self.model.adds_bos()
                    && let Some(bos) = self.model.bos()
                {
                    tokens.push(bos);
                }
                tokens.push(fim.prefix);
                tokens.extend(self.model.tokenize(prompt, false, false));
                tokens.push(fim.suffix);
                tokens.extend(self.model.tokenize(suffix, false, false));
                tokens.push(fim.middle);
                Ok((tokens, None, None))
            }
        }
    }
}

/// The grammar that forces tool calls when `tool_choice` asks for them.
fn tool_grammar(
    tools: &[ToolSpec],
    choice: &ToolChoice,
    format: ToolFormat,
) -> Result<Option<String>, TaskError> {
    let chosen: Vec<&ToolSpec> = match choice {
        ToolChoice::Auto | ToolChoice::None => return Ok(None),
        ToolChoice::Required => {
            if tools.is_empty() {
                return Err(TaskError::InvalidParam {
                    param: "tool_choice",
                    message: "tool_choice is `required` but no tools were given".into(),
                });
            }
            tools.iter().collect()
        }
        ToolChoice::Function(name) => {
            let tool = tools.iter().find(|t| &t.name == name).ok_or_else(|| {
                let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
                TaskError::InvalidParam {
                    param: "tool_choice",
                    message: format!(
                        "tool_choice names function `{name}`, which is not among the tools ({})",
                        if names.is_empty() {
                            "none given".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                }
            })?;
            vec![tool]
        }
    };
    // One call object per allowed function: its name fixed, its arguments per its schema.
    let calls: Vec<Value> = chosen
        .iter()
        .map(|tool| {
            let parameters = if tool.parameters.is_null() {
                json!({"type": "object"})
            } else {
                tool.parameters.clone()
            };
            let arguments_key = if format == ToolFormat::Llama3Json {
                "parameters"
            } else {
                "arguments"
            };
            json!({
                "type": "object",
                "properties": {"name": {"const": tool.name}, arguments_key: parameters},
                "required": ["name", arguments_key],
            })
        })
        .collect();
    let schema = if calls.len() == 1 {
        calls.into_iter().next().unwrap_or(Value::Null)
    } else {
        json!({"oneOf": calls})
    };
    let call = schema_grammar("tool_choice", &schema)?;
    // The converter names its start rule `root`; wrap it in the format's markers.
    let call = call.replace("root ::=", "call ::=");
    let root = match format {
        ToolFormat::MistralJson => r#"root ::= "[TOOL_CALLS] [" call "]""#,
        ToolFormat::Llama3Json => r#"root ::= call"#,
        ToolFormat::Hermes | ToolFormat::Generic => {
            r#"root ::= "<tool_call>\n" call "\n</tool_call>""#
        }
    };
    Ok(Some(format!("{root}\n{call}")))
}

/// A GBNF grammar for JSON that validates against `schema`; a schema llama.cpp's converter
/// cannot handle is the caller's error, naming `param`.
fn schema_grammar(param: &'static str, schema: &Value) -> Result<String, TaskError> {
    json_schema_to_grammar(&schema.to_string()).map_err(|e| {
        tracing::debug!(error = %e, "llama.cpp's schema converter refused a schema");
        TaskError::InvalidParam {
            param,
            message: "the JSON schema cannot be enforced: llama.cpp's converter rejects it (an unknown `type`, a `$ref` that does not resolve inside the schema, or an unsupported keyword); check the schema".into(),
        }
    })
}

impl Frontend for Generate {
    const TASK: Task = Task::Chat;
    type Request = GenerateRequest;
    type Input = Job;
    type Output = Generation;
    type Response = Generation;

    fn prepare(&self, request: GenerateRequest) -> Result<Prepared<Job>, TaskError> {
        let prompt = request
            .prompt
            .as_ref()
            .ok_or_else(|| TaskError::InvalidParam {
                param: "messages",
                message:
                    "nothing to generate from: give `messages` (chat) or `prompt` (completions)"
                        .into(),
            })?;
        let (tokens, tool_grammar, tool_format) = self.prompt_tokens(prompt)?;
        let context = self.context as usize;
        if tokens.is_empty() {
            return Err(TaskError::InvalidInput(
                "the prompt is empty: there is nothing to continue".into(),
            ));
        }
        if tokens.len() >= context {
            return Err(TaskError::InvalidInput(format!(
                "the prompt is {} tokens, but the context of `{}` holds {context} tokens (prompt and answer together); shorten the prompt",
                tokens.len(),
                self.id
            )));
        }
        let room = context - tokens.len();
        let max_new = match request.max_tokens {
            Some(0) => {
                return Err(TaskError::InvalidParam {
                    param: "max_tokens",
                    message: "max_tokens must be at least 1".into(),
                });
            }
            Some(wanted) if wanted as usize > room => {
                return Err(TaskError::InvalidParam {
                    param: "max_tokens",
                    message: format!(
                        "max_tokens is {wanted}, but the prompt is {} tokens and the context of `{}` holds {context}: at most {room} can be generated",
                        tokens.len(),
                        self.id
                    ),
                });
            }
            Some(wanted) => wanted as usize,
            None => room,
        };
        for &(token, _) in &request.sampling.logit_bias {
            if !self.model.is_token(token) {
                return Err(TaskError::InvalidParam {
                    param: "logit_bias",
                    message: format!(
                        "token {token} is not in the vocabulary of `{}` (ids 0 to {})",
                        self.id,
                        self.model.vocab_size() - 1
                    ),
                });
            }
        }
        let format_grammar = match &request.response_format {
            ResponseFormat::Text => None,
            ResponseFormat::JsonObject => Some(schema_grammar(
                "response_format",
                &json!({"type": "object"}),
            )?),
            ResponseFormat::JsonSchema(schema) => Some(schema_grammar("response_format", schema)?),
        };
        if tool_grammar.is_some() && format_grammar.is_some() {
            return Err(TaskError::InvalidParam {
                param: "response_format",
                message: "response_format and a forced tool_choice both shape the output; send one of them".into(),
            });
        }
        let grammar = tool_grammar.or(format_grammar);
        let sampler = self
            .model
            .sampler(&sampler_config(&request.sampling, grammar))
            .map_err(|e| TaskError::InvalidParam {
                param: "response_format",
                message: e.to_string(),
            })?;
        let cost = tokens.len();
        Ok(Prepared {
            input: Job {
                tokens,
                sampler,
                max_new,
                stops: request.stop,
                logprobs: request.logprobs,
                tool_format,
            },
            cost,
        })
    }

    fn finish(&self, output: Generation) -> Result<Generation, TaskError> {
        Ok(output)
    }
}
