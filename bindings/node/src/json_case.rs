//! Node's camelCase names for the core's snake_case JSON fields. Only the names of
//! top-level fields are mapped; values (`extraParams`, `headers`, `extra`) pass untouched,
//! and anything the core does not know is left for the core to reject or keep.

use serde_json::{Map, Value};

/// camelCase → snake_case for the fields of credentials, token fields and OAuth2 configs.
const NAMES: [(&str, &str); 11] = [
    ("accessToken", "access_token"),
    ("refreshToken", "refresh_token"),
    ("tokenType", "token_type"),
    ("expiresIn", "expires_in"),
    ("expiresAtMs", "expires_at_ms"),
    ("idToken", "id_token"),
    ("tokenUrl", "token_url"),
    ("clientId", "client_id"),
    ("clientSecret", "client_secret"),
    ("clientAuth", "client_auth"),
    ("extraParams", "extra_params"),
];

/// Extra camelCase names of OAuth2 configs.
const CONFIG_NAMES: [(&str, &str); 1] = [("timeoutMs", "timeout_ms")];

fn rename(value: Value, to_snake: bool) -> Value {
    let Value::Object(obj) = value else {
        return value;
    };
    let mut out = Map::with_capacity(obj.len());
    for (name, v) in obj {
        let mapped = NAMES
            .iter()
            .chain(CONFIG_NAMES.iter())
            .find(|(camel, snake)| {
                if to_snake {
                    *camel == name
                } else {
                    *snake == name
                }
            })
            .map(|(camel, snake)| if to_snake { *snake } else { *camel });
        out.insert(mapped.map(str::to_owned).unwrap_or(name), v);
    }
    Value::Object(out)
}

/// A JS object's top-level fields under the core's names.
pub fn to_snake(value: Value) -> Value {
    rename(value, true)
}

/// A core object's top-level fields under Node's names.
pub fn to_camel(value: Value) -> Value {
    rename(value, false)
}

/// A credential for `save`: its fields and its `refresh` config under the core's names.
pub fn credential(value: Value) -> Value {
    match to_snake(value) {
        Value::Object(mut obj) => {
            if let Some(refresh) = obj.remove("refresh") {
                obj.insert("refresh".into(), to_snake(refresh));
            }
            Value::Object(obj)
        }
        other => other,
    }
}

/// Every object key of a core report (`status`, events) in camelCase, recursively, except
/// inside `extra`-like maps the core copies from elsewhere (`updated_by` is small and ours).
pub fn report(value: Value) -> Value {
    match value {
        Value::Object(obj) => Value::Object(
            obj.into_iter()
                .map(|(k, v)| (camel(&k), report(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(report).collect()),
        other => other,
    }
}

fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}
