//! Tracked state and tracked atomics (`raceway_proto::tracked`), with this crate's client
//! filled in: `Tracked<T>`, `TrackedOpaque<T>`, `TrackedAtomicU64`, ...

use std::sync::Arc;

use crate::RacewayClient;

raceway_proto::tracked_state!("raceway_blocking", Arc<RacewayClient>);
