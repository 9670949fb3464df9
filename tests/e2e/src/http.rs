//! One raw HTTP/1.0 JSON client for the world (no extra dependencies): its control
//! endpoint (`/ferry-world/...`) and JSON-protocol AWS calls the SDKs here do not cover
//! (Organizations). A refused connection means the world is not up, and says so.

use serde_json::Value;
use std::io::{Read, Write};

/// What to do when the local AWS world cannot be reached: say it plainly, with the
/// commands that start it, instead of a bare "Connection refused".
pub fn world_not_up(endpoint: &str, why: &str) -> ! {
    panic!(
        "the local AWS world is not up at {endpoint} ({why}).\n\
         These end-to-end tests run ferry's state machines in it. Run them with `make test` \
         (or `make e2e`), which start and stop it; or start it once with `make local-up`, \
         then `cargo test`, and stop it with `make local-down`."
    )
}

/// Sends one request and returns the status and the JSON body (`null` when the body is
/// not JSON).
pub fn request(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, Value) {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host)
        .unwrap_or_else(|e| world_not_up(endpoint, &e.to_string()));
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(stream, "{head}Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, payload) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(payload).unwrap_or(Value::Null))
}

/// A JSON request that must succeed (the control endpoint): panics with the answer if not.
pub fn http_json(endpoint: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = [("Content-Type", "application/json".to_string())];
    let (status, value) = request(endpoint, method, path, &headers, &body);
    assert!(
        (200..300).contains(&status),
        "{method} {path}: HTTP {status}\n{value}"
    );
    value
}

/// A policy document as IAM returns it (URL-encoded, RFC 3986) or as given (JSON).
pub fn percent_decode(text: &str) -> String {
    if text.trim_start().starts_with('{') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
