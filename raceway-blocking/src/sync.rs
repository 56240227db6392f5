//! Tracked `std::sync` locks, with the published crate's shapes.

use std::sync::Arc;

use crate::RacewayClient;

raceway_proto::tracked_std_locks!(Arc<RacewayClient>);
