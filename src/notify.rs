//! Webhook notifications (being written).
