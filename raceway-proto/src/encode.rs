//! The batch encoder: events to `{"events":[...]}` bodies under a byte cap.
