//! Reading the lines of `journalctl --output=json`.

use serde_json::Value;

/// An entry's `MESSAGE`: a string, or an array of bytes when it is not
/// UTF-8 (read lossily). `None` when the entry has no message.
pub fn message(entry: &Value) -> Option<String> {
    match entry.get("MESSAGE")? {
        Value::String(text) => Some(text.clone()),
        Value::Array(bytes) => {
            let bytes: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        _ => None,
    }
}
