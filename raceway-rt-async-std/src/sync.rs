//! Tracked locks: `std::sync` ones with the published crate's shapes, and async ones over
//! `async-lock` (smol-rs; executor-agnostic, the locks async-std itself re-exports) for
//! locks held across `.await`.

use std::sync::Arc;

use crate::RacewayClient;

raceway_proto::tracked_std_locks!(Arc<RacewayClient>);

raceway_proto::async_tracked_locks!("async_lock", async_lock, Arc<RacewayClient>);
