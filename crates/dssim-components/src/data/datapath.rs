//! The data path of a service instance: what it calls after its CPU work to read or write
//! data (cache, database). The service knows only this seam: [`DataPath::route`] names the
//! actor to call for a request, and the worker stays busy until that call is answered.
//!
//! With `cache = "redis"` the entry is the cache (one shared actor, or with `local = true`
//! the instance's own cache, reached without the network); the cache reads and writes the
//! database itself (see [`crate::cache`]). Without a cache the entry is the database.

use dssim_engine::ActorId;

use crate::database::DbRouter;
use crate::node::Ctx;
use crate::request::{ReqId, Request};

/// Where an instance sends a request for its data; empty when the service has none.
#[derive(Clone, Debug, Default)]
pub struct DataPath {
    /// The first data component (a cache or a database entry point).
    pub entry: Option<ActorId>,
    /// The service's database, reached directly when there is no cache in front.
    pub db: Option<DbRouter>,
    /// Whether `entry` is on the same machine (a local cache): called without the network.
    pub local: bool,
    /// The instance's region (model index): a query to a shard placed elsewhere is remote.
    pub region: u16,
}

impl DataPath {
    /// The actor to call for `req`, if the service has a data tier.
    #[inline]
    pub fn target(&self, _req: &Request) -> Option<ActorId> {
        self.entry
    }

    /// The actor to call for request `req`: the cache when there is one, else the database
    /// node its router picks.
    #[inline]
    pub fn route(&self, ctx: &mut Ctx<'_>, req: ReqId) -> Option<ActorId> {
        if let Some(e) = self.entry {
            return Some(e);
        }
        self.db.as_ref().map(|db| db.route(ctx, req))
    }
}
