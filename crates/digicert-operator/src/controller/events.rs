//! Kubernetes Events about orders, with repeats folded into a series.
//!
//! kube's `Recorder` keeps every event it published, whole, for six minutes and scans
//! them all on each publish: with thousands of orders issuing at once that is tens of
//! MiB and quadratic work. This keeps a small entry (event name, count, note hash) per
//! recent (order, type, reason, action), forgets it after the same six minutes, and
//! never holds more than `MAX_RECENT` of them.
//!
//! A repeat shows its own note, not the first one's: `kubectl describe` would otherwise
//! name a certificate the Secret no longer holds. events.k8s.io/v1 keeps a note
//! immutable, so a changed note is written through the core/v1 view of the same Event
//! (its `message`), which both views then show. Where RBAC grants events.k8s.io only,
//! a changed note starts a new Event instead.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
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
    /// Hash of the note the Event shows now.
    note: u64,
    last: Instant,
}

/// How a repeat joins the series of the Event published before.
#[derive(Debug, PartialEq, Eq)]
struct Repeat {
    name: String,
    count: i32,
    /// The Event shows another note, to be replaced with this one's.
    new_note: bool,
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
        let note = truncate(note, MAX_NOTE_BYTES);
        let note_hash = hash(note);
        let now = Instant::now();
        let repeat = self
            .recent
            .lock()
            .expect("events lock")
            .repeat(&key, note_hash, now);
        if let Some(Repeat {
            name,
            count,
            new_note,
        }) = repeat
        {
            let patch = series_patch(
                count,
                new_note.then_some(note),
                k8s_openapi::jiff::Timestamp::now(),
            );
            let patched = if new_note {
                Api::<CoreEvent>::namespaced(self.client.clone(), &namespace)
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(drop)
            } else {
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(drop)
            };
            match patched {
                Ok(()) => {
                    self.remember(key, name, count, note_hash, now);
                    return Ok(());
                }
                // Gone already (the API server keeps events only a while): a new one.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                // No right to patch core/v1 Events (RBAC that grants events.k8s.io
                // only): a new Event shows the new note instead.
                Err(kube::Error::Api(s)) if s.code == 403 && new_note => {}
                Err(e) => return Err(e),
            }
        }
        let event = self.event(type_, reason, action, note, regarding);
        let name = event.metadata.name.clone().unwrap_or_default();
        api.create(&PostParams::default(), &event).await?;
        self.remember(key, name, 1, note_hash, now);
        Ok(())
    }

    fn remember(&self, key: Key, name: String, count: i32, note: u64, now: Instant) {
        self.recent.lock().expect("events lock").remember(
            key,
            Entry {
                name,
                count,
                note,
                last: now,
            },
            now,
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
            note: Some(note.into()),
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

    /// The series an event of `key` with the note hashed `note` joins, if one is recent.
    fn repeat(&mut self, key: &Key, note: u64, now: Instant) -> Option<Repeat> {
        self.sweep(now);
        self.entries
            .get(key)
            .filter(|e| now.duration_since(e.last) < SERIES_WINDOW)
            .map(|e| Repeat {
                name: e.name.clone(),
                count: e.count + 1,
                new_note: e.note != note,
            })
    }

    fn remember(&mut self, key: Key, entry: Entry, now: Instant) {
        if self.entries.len() >= MAX_RECENT && !self.entries.contains_key(&key) {
            self.entries
                .retain(|_, e| now.duration_since(e.last) < SERIES_WINDOW);
            if self.entries.len() >= MAX_RECENT {
                self.entries.clear();
            }
        }
        self.entries.insert(key, entry);
    }
}

/// The merge patch that counts a repeat into a series, with the repeat's note when it
/// differs from the one shown. The note goes in as `message`: only the core/v1 view of
/// an Event lets it change.
fn series_patch(
    count: i32,
    new_note: Option<&str>,
    observed: k8s_openapi::jiff::Timestamp,
) -> serde_json::Value {
    let mut patch = serde_json::json!({
        "series": EventSeries {
            count,
            last_observed_time: MicroTime(observed),
        }
    });
    if let Some(note) = new_note {
        patch["message"] = note.into();
    }
    patch
}

fn hash(note: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    note.hash(&mut hasher);
    hasher.finish()
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

    fn key(reason: &str) -> Key {
        Key {
            uid: "uid-1".into(),
            type_: EventType::Normal,
            reason: reason.into(),
            action: "Issue".into(),
        }
    }

    #[test]
    fn a_repeat_joins_the_series_and_says_whether_its_note_is_new() {
        let start = Instant::now();
        let mut recent = Recent {
            entries: HashMap::new(),
            swept: start,
        };
        let first = hash("certificate 100006 (serial 3B21F2)");
        let second = hash("certificate 100007 (serial 35B468)");
        assert_eq!(recent.repeat(&key("CertificateIssued"), first, start), None);
        recent.remember(
            key("CertificateIssued"),
            Entry {
                name: "web.1".into(),
                count: 1,
                note: first,
                last: start,
            },
            start,
        );
        let later = start + Duration::from_secs(60);
        assert_eq!(
            recent.repeat(&key("CertificateIssued"), first, later),
            Some(Repeat {
                name: "web.1".into(),
                count: 2,
                new_note: false
            })
        );
        assert_eq!(
            recent.repeat(&key("CertificateIssued"), second, later),
            Some(Repeat {
                name: "web.1".into(),
                count: 2,
                new_note: true
            })
        );
        // Another reason is another series.
        assert_eq!(recent.repeat(&key("Renewing"), first, later), None);
        // Past the window a repeat starts a new Event.
        assert_eq!(
            recent.repeat(&key("CertificateIssued"), first, start + SERIES_WINDOW),
            None
        );
    }

    #[test]
    fn the_series_patch_carries_a_new_note_as_the_message() {
        let at = k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let same = series_patch(3, None, at);
        assert_eq!(same["series"]["count"], 3);
        assert_eq!(
            same["series"]["lastObservedTime"],
            "2027-01-15T08:00:00.000000Z"
        );
        assert!(same.get("message").is_none(), "{same}");
        let new = series_patch(3, Some("certificate 100007 (serial 35B468)"), at);
        assert_eq!(new["message"], "certificate 100007 (serial 35B468)");
        assert_eq!(new["series"], same["series"]);
    }
}
