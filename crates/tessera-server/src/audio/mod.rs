//! The audio routes. Those that take files take them as OpenAI's do: `multipart/form-data` with
//! the audio in a field named `file` and the other parameters as text fields.

mod speech;
mod transcribe;
mod vad;

pub(crate) use speech::*;
pub(crate) use transcribe::*;
pub(crate) use vad::*;

use std::str::FromStr;

use axum::extract::Multipart;

use tessera_runtime::RuntimeError;

use crate::ApiError;

/// A problem with the uploaded audio names the `file` field, not `input`.
pub(crate) fn blame_the_file(error: RuntimeError) -> ApiError {
    let file = matches!(error, RuntimeError::InvalidInput(_));
    let error = ApiError::from(error);
    if file { error.param("file") } else { error }
}

/// A multipart form, read whole: the file and the text fields.
pub(crate) struct Form {
    file: Option<Vec<u8>>,
    fields: Vec<(String, String)>,
}

impl Form {
    /// Reads every field. A second `file`, or a text field that is not UTF-8, is a 400.
    pub(crate) async fn read(mut multipart: Multipart) -> Result<Form, ApiError> {
        let mut form = Form {
            file: None,
            fields: Vec::new(),
        };
        while let Some(field) = multipart.next_field().await? {
            let name = field.name().unwrap_or_default().to_string();
            if name == "file" {
                if form.file.is_some() {
                    return Err(ApiError::bad_request("send one `file` per request").param("file"));
                }
                form.file = Some(field.bytes().await?.to_vec());
            } else {
                let value = field.text().await.map_err(|_| {
                    ApiError::bad_request(format!("the form field `{name}` is not UTF-8 text"))
                })?;
                form.fields.push((name, value));
            }
        }
        Ok(form)
    }

    /// The uploaded file, or a 400 that says how to send one.
    pub(crate) fn file(&mut self) -> Result<Vec<u8>, ApiError> {
        self.file.take().ok_or_else(|| {
            ApiError::bad_request(
                "no audio: send the file in a multipart field named `file` (curl: -F file=@speech.wav)",
            )
            .param("file")
        })
    }

    /// A text field's value, if sent (the last one when repeated).
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a repeated text field, in order.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// A text field parsed as `T`; `example` shows a valid value in the error.
    pub(crate) fn parse<T: FromStr>(
        &self,
        name: &'static str,
        example: &str,
    ) -> Result<Option<T>, ApiError> {
        match self.text(name) {
            None => Ok(None),
            Some(text) => text.trim().parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("`{name}` is `{text}`; send e.g. {example}"))
                    .param(name)
            }),
        }
    }
}
