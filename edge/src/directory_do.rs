//! The directory: which tenant a site key belongs to.
//!
//! Rules: a site key belongs to at most one tenant; a tenant saving its config
//! claims its site keys and releases the ones it dropped; claiming a key held by
//! another tenant is refused (`site_taken`). Unknown keys are `unknown_site` (404).
//! With `DEMO_SEED = "true"` the demo tenant's sites are registered on first use.

use crate::error::{ApiError, ApiResult};
use crate::{answer, env_string};
use serde::Deserialize;
use shared::ids::{SiteKey, TenantId};
use shared::rpc::{Claim, Done, ToDirectory};
use worker::{durable_object, DurableObject, Env, Request, Response, State};

#[durable_object]
pub struct DirectoryObject {
    state: State,
    env: Env,
    /// Tables exist and the demo is seeded (once per instance, not per lookup).
    ready: std::cell::Cell<bool>,
}

#[derive(Deserialize)]
struct Row {
    tenant: String,
}

impl DirectoryObject {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    fn ensure(&self) -> ApiResult<()> {
        if self.ready.get() {
            return Ok(());
        }
        self.sql().exec(
            "CREATE TABLE IF NOT EXISTS sites (site TEXT PRIMARY KEY, tenant TEXT NOT NULL)",
            None,
        )?;
        if env_string(&self.env, "DEMO_SEED").as_deref() == Some("true") {
            let demo: shared::protocol::AdminConfig = serde_json::from_str(crate::DEMO_TENANT)?;
            for s in demo.config.sites {
                self.sql().exec(
                    "INSERT OR IGNORE INTO sites (site, tenant) VALUES (?, 'demo')",
                    vec![s.key.as_str().into()],
                )?;
            }
        }
        self.ready.set(true);
        Ok(())
    }

    fn lookup(&self, site: &SiteKey) -> ApiResult<TenantId> {
        let rows: Vec<Row> = self
            .sql()
            .exec(
                "SELECT tenant FROM sites WHERE site = ?",
                vec![site.as_str().into()],
            )?
            .to_array()?;
        let row = rows
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::not_found("unknown_site", format!("unknown site {site}")))?;
        Ok(TenantId::new(row.tenant)?)
    }

    fn claim(&self, c: Claim) -> ApiResult<Done> {
        for s in &c.sites {
            if let Ok(t) = self.lookup(s) {
                if t != c.tenant {
                    return Err(ApiError::new(
                        409,
                        "site_taken",
                        format!("site {s} belongs to another tenant"),
                    ));
                }
            }
        }
        self.sql().exec(
            "DELETE FROM sites WHERE tenant = ?",
            vec![c.tenant.as_str().into()],
        )?;
        for s in &c.sites {
            self.sql().exec(
                "INSERT INTO sites (site, tenant) VALUES (?, ?)",
                vec![s.as_str().into(), c.tenant.as_str().into()],
            )?;
        }
        Ok(Done {})
    }
}

impl DurableObject for DirectoryObject {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            ready: std::cell::Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let text = req.text().await.unwrap_or_default();
        if let Err(e) = self.ensure() {
            return e.to_response();
        }
        match serde_json::from_str::<ToDirectory>(&text) {
            Ok(ToDirectory::Lookup(l)) => answer::<shared::rpc::Lookup>(self.lookup(&l.site)),
            Ok(ToDirectory::Claim(c)) => answer::<Claim>(self.claim(c)),
            Err(e) => ApiError::bad_request("invalid_call", e.to_string()).to_response(),
        }
    }
}
