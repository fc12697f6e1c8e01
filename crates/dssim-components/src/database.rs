//! Databases (stub to be completed): the router that picks which database actor serves a
//! request. Callers (service data paths, caches on a miss) hold a [`DbRouter`] and call
//! `route` per request.

use dssim_engine::{ActorId, Rng};

use crate::request::Request;

/// Picks the database actor (primary, replica, shard) for a request.
#[derive(Clone, Debug)]
pub struct DbRouter {
    /// The single database actor, until replication and sharding exist.
    pub entry: ActorId,
}

impl DbRouter {
    /// The actor that should serve `req`.
    #[inline]
    pub fn route(&self, _req: &Request, _rng: &mut Rng) -> ActorId {
        self.entry
    }
}
