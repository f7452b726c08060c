//! JSON read by the browser: `JSON.parse`, walked through [`shared::mini::Json`].
//!
//! Rules:
//! - Parsing is the browser's; this module only looks values up, so a client
//!   links no JSON parser of its own.
//! - `null` and `undefined` are absent, as `shared::mini` expects.

use js_sys::{Array, Reflect, JSON};
use wasm_bindgen::JsValue;

/// A value `JSON.parse` returned, or a part of one.
pub struct Value(JsValue);

impl shared::mini::Json for Value {
    fn parse(text: &str) -> Option<Self> {
        JSON::parse(text).ok().map(Value)
    }

    fn get(&self, key: &str) -> Option<Self> {
        if !self.0.is_object() {
            return None;
        }
        let v = Reflect::get(&self.0, &JsValue::from_str(key)).ok()?;
        (!v.is_null() && !v.is_undefined()).then_some(Value(v))
    }

    fn as_text(&self) -> Option<String> {
        self.0.as_string()
    }

    fn as_number(&self) -> Option<f64> {
        self.0.as_f64()
    }

    fn as_bool(&self) -> Option<bool> {
        self.0.as_bool()
    }

    fn as_items(&self) -> Option<Vec<Self>> {
        Array::is_array(&self.0).then(|| Array::from(&self.0).iter().map(Value).collect())
    }
}
