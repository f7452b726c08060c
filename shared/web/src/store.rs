//! Browser storage, as text or JSON.
//!
//! Rules: storage can be missing or full (private windows, quotas, blocked cookies);
//! every call then does nothing and reads find nothing, so the apps work without it
//! and only lose what a reload would have resumed. A stored value that no longer
//! parses is read as missing.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Which storage: kept across visits, or only for this tab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// `localStorage`: survives reloads and new tabs of the same origin.
    Local,
    /// `sessionStorage`: this tab only.
    Session,
}

impl Store {
    fn storage(self) -> Option<web_sys::Storage> {
        let w = web_sys::window()?;
        match self {
            Store::Local => w.local_storage(),
            Store::Session => w.session_storage(),
        }
        .ok()
        .flatten()
    }

    /// The text stored under `key`.
    pub fn get(self, key: &str) -> Option<String> {
        self.storage()?.get_item(key).ok().flatten()
    }

    /// Stores `value` under `key`.
    pub fn set(self, key: &str, value: &str) {
        if let Some(s) = self.storage() {
            let _ = s.set_item(key, value);
        }
    }

    /// Removes `key`.
    pub fn remove(self, key: &str) {
        if let Some(s) = self.storage() {
            let _ = s.remove_item(key);
        }
    }

    /// The JSON value stored under `key`, if it parses as `T`.
    pub fn load<T: DeserializeOwned>(self, key: &str) -> Option<T> {
        serde_json::from_str(&self.get(key)?).ok()
    }

    /// Stores `value` as JSON under `key`.
    pub fn save<T: Serialize>(self, key: &str, value: &T) {
        if let Ok(json) = serde_json::to_string(value) {
            self.set(key, &json);
        }
    }
}
