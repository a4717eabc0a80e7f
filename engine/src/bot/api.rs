//! The Bot API client: `getUpdates`, `sendMessage` (with an inline keyboard of buttons when
//! asked) and `answerCallbackQuery` over the workspace's blocking HTTPS client
//! ([`RestClient`]: certificate verification always on); `getUpdates`'s parameters in the query
//! string, the others' in a JSON body (a long text would not fit a URL). `getUpdates` asks for
//! messages and callback queries (a button pressed), both handed on as [`Incoming`].
//!
//! The token is part of every path (`/bot<TOKEN>/<method>`). It never leaves this module in
//! text: [`ApiError`] holds no path, and every message that came from below is passed through
//! [`mask`] first, so a log line or a reply can never carry it.

use std::time::Duration;

use pinion_net::rest::{RestClient, RestSettings};
use pinion_net::wss::TlsClientConfig;
use serde::Deserialize;

/// What the token is shown as.
pub const MASKED: &str = "<token>";

/// The longest message text the API takes, in characters.
pub const MAX_TEXT: usize = 4096;

/// Why a Bot API call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request did not complete (DNS, TCP, TLS, a timeout, a broken response); masked.
    #[error("transport: {0}")]
    Transport(String),
    /// The API refused the token (401): the configured token is wrong or revoked.
    #[error("the API refused the bot token (401 Unauthorized)")]
    Unauthorized,
    /// Too many requests: wait this long.
    #[error("rate limited by the API: retry after {0:?}")]
    RetryAfter(Duration),
    /// Any other refusal, with the API's code and description (masked).
    #[error("HTTP {status}: {description}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The API's `description`, or what the body held.
        description: String,
    },
    /// A 200 whose body is not the API's JSON; what was seen.
    #[error("unreadable answer: {0}")]
    Body(String),
}

impl ApiError {
    /// Whether the API itself is unreachable or failing (worth an outage back-off), rather than
    /// refusing this one request.
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Body(_) => true,
            Self::Refused { status, .. } => *status >= 500,
            Self::Unauthorized | Self::RetryAfter(_) => false,
        }
    }
}

/// `text` with every occurrence of `token` replaced by [`MASKED`].
pub fn mask(text: &str, token: &str) -> String {
    if token.is_empty() {
        return text.to_owned();
    }
    text.replace(token, MASKED)
}

/// A text message from a user, or a button of an inline keyboard pressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The update's id (the next poll's offset is one past it).
    pub update_id: u64,
    /// The sender; `None` for a channel post.
    pub user_id: Option<i64>,
    /// The chat to answer in.
    pub chat_id: i64,
    /// The text (empty for a message without one); for a button, its callback data.
    pub text: String,
    /// For a button pressed: the callback query's id, to be answered
    /// ([`BotApi::answer_callback`]).
    pub callback: Option<String>,
}

/// A button of an inline keyboard: its label and the callback data it sends back when pressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// What the button says.
    pub label: String,
    /// What a press sends back (at most 64 bytes).
    pub data: String,
}

#[derive(Debug, Deserialize)]
struct Reply<T> {
    ok: bool,
    result: Option<T>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<ReplyParameters>,
}

#[derive(Debug, Deserialize)]
struct ReplyParameters {
    retry_after: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct RawUpdate {
    update_id: u64,
    message: Option<RawMessage>,
    callback_query: Option<RawCallback>,
}

#[derive(Debug, Deserialize)]
struct RawCallback {
    id: String,
    from: RawUser,
    /// The message the keyboard was on (absent when too old for the API to say).
    message: Option<RawCallbackMessage>,
    data: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawCallbackMessage {
    chat: RawChat,
}

#[derive(Debug, Deserialize)]
struct RawMessage {
    from: Option<RawUser>,
    chat: RawChat,
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawUser {
    id: i64,
}

#[derive(Debug, Deserialize)]
struct RawChat {
    id: i64,
}

/// One connection to the Bot API for one bot.
#[derive(Debug)]
pub struct BotApi {
    client: RestClient,
    token: String,
    path: String,
}

impl BotApi {
    /// A client for `base_url` (`https://api.telegram.org`) whose reads wait up to `read_wait`
    /// (a long poll's timeout and a margin).
    pub fn new(
        base_url: &str,
        token: &str,
        tls: TlsClientConfig,
        read_wait: Duration,
    ) -> Result<Self, ApiError> {
        let mut settings = RestSettings::new(tls);
        settings.connect_timeout = Duration::from_secs(5);
        settings.read_timeout = read_wait;
        settings.request_timeout = read_wait + Duration::from_secs(5);
        settings.limits.max_body = 4 << 20;
        let client = RestClient::new(base_url.trim_end_matches('/'), settings)
            .map_err(|e| ApiError::Transport(mask(&e.to_string(), token)))?;
        Ok(BotApi {
            client,
            token: token.to_owned(),
            path: String::with_capacity(256),
        })
    }

    /// The messages after `offset` (confirming those before it), waiting up to `timeout` for
    /// one to come.
    pub fn get_updates(
        &mut self,
        offset: u64,
        timeout: Duration,
    ) -> Result<Vec<Incoming>, ApiError> {
        let query = format!(
            "offset={offset}&timeout={}&allowed_updates=%5B%22message%22%2C%22callback_query%22%5D",
            timeout.as_secs()
        );
        let raw: Vec<RawUpdate> = self.call("getUpdates", &query, None)?;
        Ok(raw
            .into_iter()
            .map(|u| match (u.message, u.callback_query) {
                (Some(m), _) => Incoming {
                    update_id: u.update_id,
                    user_id: m.from.map(|f| f.id),
                    chat_id: m.chat.id,
                    text: m.text.unwrap_or_default(),
                    callback: None,
                },
                (None, Some(c)) => Incoming {
                    update_id: u.update_id,
                    user_id: Some(c.from.id),
                    // Without its message, the private chat of the user (whose id it is).
                    chat_id: c.message.map_or(c.from.id, |m| m.chat.id),
                    text: c.data.unwrap_or_default(),
                    callback: Some(c.id),
                },
                // Neither (an edit, another kind): only its id matters, to move past it.
                (None, None) => Incoming {
                    update_id: u.update_id,
                    user_id: None,
                    chat_id: 0,
                    text: String::new(),
                    callback: None,
                },
            })
            .collect())
    }

    /// Sends `text` (cut to [`MAX_TEXT`] characters) to `chat_id`.
    pub fn send_message(&mut self, chat_id: i64, text: &str) -> Result<(), ApiError> {
        self.send_with_buttons(chat_id, text, &[])
    }

    /// Sends `text` to `chat_id` with `buttons` (when any) as an inline keyboard of one row.
    pub fn send_with_buttons(
        &mut self,
        chat_id: i64,
        text: &str,
        buttons: &[Button],
    ) -> Result<(), ApiError> {
        // A JSON body: a message of 4096 characters would make too long a query string.
        let mut body = serde_json::json!({
            "chat_id": chat_id,
            "text": clip(text, MAX_TEXT),
            "disable_web_page_preview": true,
        });
        if !buttons.is_empty() {
            let row: Vec<serde_json::Value> = buttons
                .iter()
                .map(|b| serde_json::json!({"text": b.label, "callback_data": b.data}))
                .collect();
            body["reply_markup"] = serde_json::json!({ "inline_keyboard": [row] });
        }
        let body = serde_json::to_vec(&body).map_err(|e| ApiError::Body(e.to_string()))?;
        let _: serde_json::Value = self.call("sendMessage", "", Some(&body))?;
        Ok(())
    }

    /// Answers the callback query `id` (a button pressed), with `text` shown to the user
    /// briefly; the client stops showing the button as busy.
    pub fn answer_callback(&mut self, id: &str, text: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({
            "callback_query_id": id,
            "text": clip(text, 200),
        });
        let body = serde_json::to_vec(&body).map_err(|e| ApiError::Body(e.to_string()))?;
        let _: serde_json::Value = self.call("answerCallbackQuery", "", Some(&body))?;
        Ok(())
    }

    /// `GET /bot<TOKEN>/<method>?<query>`, or a `POST` of the JSON `body`; the answer's
    /// `result`.
    fn call<T: serde::de::DeserializeOwned>(
        &mut self,
        method: &str,
        query: &str,
        body: Option<&[u8]>,
    ) -> Result<T, ApiError> {
        self.path.clear();
        self.path.push_str("/bot");
        self.path.push_str(&self.token);
        self.path.push('/');
        self.path.push_str(method);
        if !query.is_empty() {
            self.path.push('?');
            self.path.push_str(query);
        }
        let sent = match body {
            None => self.client.get(&self.path),
            Some(body) => self.client.post(&self.path, "application/json", body),
        };
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                // A failed connection is not reused.
                self.client.close();
                return Err(ApiError::Transport(mask(&e.to_string(), &self.token)));
            }
        };
        let reply: Result<Reply<T>, _> = serde_json::from_slice(&response.body);
        match (response.status, reply) {
            (
                200,
                Ok(Reply {
                    ok: true,
                    result: Some(result),
                    ..
                }),
            ) => Ok(result),
            (401, _) => Err(ApiError::Unauthorized),
            (status, Ok(reply)) if status == 429 || reply.error_code == Some(429) => {
                let secs = reply
                    .parameters
                    .and_then(|p| p.retry_after)
                    .or_else(|| response.retry_after.map(|d| d.as_secs()))
                    .unwrap_or(1);
                Err(ApiError::RetryAfter(Duration::from_secs(secs.max(1))))
            }
            (200, Ok(reply)) => Err(ApiError::Body(mask(
                &format!(
                    "ok {} without a result ({})",
                    reply.ok,
                    reply.description.unwrap_or_default()
                ),
                &self.token,
            ))),
            (200, Err(e)) => Err(ApiError::Body(e.to_string())),
            (status, Ok(reply)) => Err(ApiError::Refused {
                status,
                description: mask(&reply.description.unwrap_or_default(), &self.token),
            }),
            (status, Err(_)) => Err(ApiError::Refused {
                status,
                // Masked whole, then clipped: a clip first could cut the token in two and
                // leave its first part unmasked.
                description: clip(
                    &mask(&String::from_utf8_lossy(&response.body), &self.token),
                    200,
                )
                .to_owned(),
            }),
        }
    }
}

/// The first `max` characters of `text`.
pub fn clip(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_masked_wherever_it_appears() {
        let token = "123456:AAE-secret_part";
        let text = format!("GET /bot{token}/getUpdates failed; again /bot{token}/x");
        let masked = mask(&text, token);
        assert!(!masked.contains("secret_part"));
        assert_eq!(masked.matches(MASKED).count(), 2);
        assert_eq!(mask("nothing here", token), "nothing here");
    }

    #[test]
    fn text_is_clipped_on_characters() {
        assert_eq!(clip("ééé", 2), "éé");
        assert_eq!(clip("ab", 5), "ab");
    }
}
