//! Tracked locks: `std::sync` ones with the published crate's shapes, and async ones over
//! `tokio::sync` for locks held across `.await`.

use std::sync::Arc;

use crate::RacewayClient;

raceway_proto::tracked_std_locks!(Arc<RacewayClient>);

raceway_proto::async_tracked_locks!("tokio::sync", tokio::sync, Arc<RacewayClient>);
