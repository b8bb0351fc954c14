//! Kubernetes Events about orders, with repeats folded into a series.
//!
//! kube's `Recorder` keeps every event it published, whole, for six minutes and scans
//! them all on each publish: with thousands of orders issuing at once that is tens of
//! MiB and quadratic work. This keeps a small entry (event name and count) per recent
//! (order, type, reason, action), forgets it after the same six minutes, and never
//! holds more than `MAX_RECENT` of them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};

/// How long a repeat still joins the earlier event's series.
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Entries kept at most; beyond it repeats start new events (nothing else is lost).
const MAX_RECENT: usize = 10_000;
/// The API server refuses longer notes.
const MAX_NOTE_BYTES: usize = 1024;
/// Expired entries are swept at most this often, not on every publish.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Key {
    uid: String,
    type_: EventType,
    reason: String,
    action: String,
}

struct Entry {
    name: String,
    count: i32,
    last: Instant,
}

struct Recent {
    entries: HashMap<Key, Entry>,
    swept: Instant,
}

pub struct Events {
    client: kube::Client,
    controller: String,
    instance: String,
    recent: Mutex<Recent>,
}

impl Events {
    pub fn new(client: kube::Client, controller: &str, instance: Option<String>) -> Self {
        Events {
            client,
            controller: controller.into(),
            instance: instance.unwrap_or_else(|| controller.into()),
            recent: Mutex::new(Recent {
                entries: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// Publishes an event about `regarding`, or counts it into the series of the
    /// same event published less than six minutes ago.
    pub async fn publish(
        &self,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let namespace = regarding.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let key = Key {
            uid: regarding.uid.clone().unwrap_or_default(),
            type_,
            reason: reason.into(),
            action: action.into(),
        };
        let now = Instant::now();
        let repeat = {
            let mut recent = self.recent.lock().expect("events lock");
            recent.sweep(now);
            recent
                .entries
                .get(&key)
                .filter(|e| now.duration_since(e.last) < SERIES_WINDOW)
                .map(|e| (e.name.clone(), e.count + 1))
        };
        if let Some((name, count)) = repeat {
            let patch = serde_json::json!({
                "series": EventSeries {
                    count,
                    last_observed_time: MicroTime(k8s_openapi::jiff::Timestamp::now()),
                }
            });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.remember(key, name, count, now);
                    return Ok(());
                }
                // Gone already (the API server keeps events only a while): a new one.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let event = self.event(type_, reason, action, note, regarding);
        let name = event.metadata.name.clone().unwrap_or_default();
        api.create(&PostParams::default(), &event).await?;
        self.remember(key, name, 1, now);
        Ok(())
    }

    fn remember(&self, key: Key, name: String, count: i32, now: Instant) {
        let mut recent = self.recent.lock().expect("events lock");
        if recent.entries.len() >= MAX_RECENT && !recent.entries.contains_key(&key) {
            recent
                .entries
                .retain(|_, e| now.duration_since(e.last) < SERIES_WINDOW);
            if recent.entries.len() >= MAX_RECENT {
                recent.entries.clear();
            }
        }
        recent.entries.insert(
            key,
            Entry {
                name,
                count,
                last: now,
            },
        );
    }

    fn event(
        &self,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
        regarding: &ObjectReference,
    ) -> Event {
        let now = k8s_openapi::jiff::Timestamp::now();
        Event {
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&self.controller),
                    now.as_nanosecond()
                )),
                ..ObjectMeta::default()
            },
            action: Some(action.into()),
            reason: Some(reason.into()),
            note: Some(truncate(note, MAX_NOTE_BYTES).into()),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

impl Recent {
    fn sweep(&mut self, now: Instant) {
        if now.duration_since(self.swept) >= SWEEP_EVERY {
            self.entries
                .retain(|_, e| now.duration_since(e.last) < SERIES_WINDOW);
            self.swept = now;
        }
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_cut_at_a_character_boundary() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        // "é" is two bytes: cutting inside it keeps the character out.
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate(&"x".repeat(2000), MAX_NOTE_BYTES).len(), 1024);
    }
}
