//! A step's output as storable JSON (what the journal records), redacted.

use crate::dsl::strict::StrictMap;
use crate::redact::Redactor;
use rhai::{Dynamic, Map};
use serde_json::Value;

/// A step output as JSON: unit, bool, int, float, string, array or map of those.
pub(crate) fn to_json(v: &Dynamic, redactor: &Redactor) -> Result<Value, String> {
    if v.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = v.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = v.as_float() {
        return Ok(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number));
    }
    if v.is_string() {
        return Ok(Value::String(
            redactor.scrub(&v.clone().into_string().unwrap_or_default()),
        ));
    }
    if v.is_array() {
        let a = v.clone().into_array().unwrap_or_default();
        return a
            .iter()
            .map(|x| to_json(x, redactor))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Some(m) = v.read_lock::<StrictMap>() {
        let mut m = m.clone();
        let map = Dynamic::from_map(m.entries().clone());
        return to_json(&map, redactor);
    }
    if v.is_map() {
        let m = v.clone().cast::<Map>();
        let mut out = serde_json::Map::new();
        for (k, x) in m {
            out.insert(k.to_string(), to_json(&x, redactor)?);
        }
        return Ok(Value::Object(out));
    }
    let what = match v.type_name() {
        "Fn" => "a closure (Fn)".to_string(),
        other => other.to_string(),
    };
    Err(format!(
        "a step's output must be (), a bool, number, string, array or map of those, not {what}"
    ))
}
