//! Per-session one-shot watches, bounded. Each watch remembers what the client saw when it was
//! set; after every new image the session compares and fires the matching event, so events come
//! from the difference between what was read and what is now (for stored and projected nodes).

use super::tree::{lookup, TreeView};
use crate::codec::jute::{event_type, WatcherEvent, STATE_SYNC_CONNECTED};
use std::collections::BTreeMap;

/// What a data watch saw: identity (czxid), version and bytes.
type DataSeen = (i64, i32, Option<Vec<u8>>);
/// What a child watch saw: identity and the child names.
type ChildrenSeen = (i64, Vec<String>);

/// A session's watches.
#[derive(Debug)]
pub struct Watches {
    max: usize,
    data: BTreeMap<String, DataSeen>,
    exist: BTreeMap<String, ()>,
    child: BTreeMap<String, ChildrenSeen>,
}

impl Watches {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            data: BTreeMap::new(),
            exist: BTreeMap::new(),
            child: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.data.len() + self.exist.len() + self.child.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn room(&self) -> bool {
        self.len() < self.max
    }

    /// A data watch (getData, or exists on an existing node). Returns false when full.
    pub fn watch_data(&mut self, view: &TreeView<'_>, path: &str) -> bool {
        let Some(n) = lookup(view, path) else {
            return self.watch_exists(path);
        };
        if !self.data.contains_key(path) && !self.room() {
            return false;
        }
        self.data
            .insert(path.to_owned(), (n.stat.czxid, n.stat.version, n.data));
        true
    }

    /// An exists watch on a missing node.
    pub fn watch_exists(&mut self, path: &str) -> bool {
        if !self.exist.contains_key(path) && !self.room() {
            return false;
        }
        self.exist.insert(path.to_owned(), ());
        true
    }

    pub fn watch_children(&mut self, view: &TreeView<'_>, path: &str) -> bool {
        let Some(n) = lookup(view, path) else {
            return false;
        };
        if !self.child.contains_key(path) && !self.room() {
            return false;
        }
        self.child
            .insert(path.to_owned(), (n.stat.czxid, n.children));
        true
    }

    /// Fires (and removes) every watch whose node changed; events in ZooKeeper's order
    /// (the node's own event before its parent's children event).
    pub fn fire(&mut self, view: &TreeView<'_>) -> Vec<WatcherEvent> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut node_events: BTreeMap<String, i32> = BTreeMap::new();
        let mut child_events = Vec::new();
        self.data.retain(|path, seen| {
            let ev = match lookup(view, path) {
                None => Some(event_type::NODE_DELETED),
                Some(n) if n.stat.czxid != seen.0 => Some(event_type::NODE_DELETED),
                Some(n) if n.stat.version != seen.1 || n.data != seen.2 => {
                    Some(event_type::NODE_DATA_CHANGED)
                }
                Some(_) => None,
            };
            ev.map(|e| node_events.insert(path.clone(), e)).is_none()
        });
        self.exist.retain(|path, ()| {
            let created = lookup(view, path).is_some();
            if created {
                node_events.insert(path.clone(), event_type::NODE_CREATED);
            }
            !created
        });
        self.child.retain(|path, seen| {
            let ev = match lookup(view, path) {
                None => Some(event_type::NODE_DELETED),
                Some(n) if n.stat.czxid != seen.0 => Some(event_type::NODE_DELETED),
                Some(n) if n.children != seen.1 => Some(event_type::NODE_CHILDREN_CHANGED),
                Some(_) => None,
            };
            match ev {
                Some(event_type::NODE_DELETED) => {
                    node_events
                        .entry(path.clone())
                        .or_insert(event_type::NODE_DELETED);
                    false
                }
                Some(e) => {
                    child_events.push((path.clone(), e));
                    false
                }
                None => true,
            }
        });
        let mut out: Vec<WatcherEvent> = node_events
            .into_iter()
            .map(|(path, event_type)| WatcherEvent {
                event_type,
                state: STATE_SYNC_CONNECTED,
                path,
            })
            .collect();
        out.extend(
            child_events
                .into_iter()
                .map(|(path, event_type)| WatcherEvent {
                    event_type,
                    state: STATE_SYNC_CONNECTED,
                    path,
                }),
        );
        out
    }

    /// Re-registers watches after a reconnect (setWatches), firing those already stale
    /// relative to `relative_zxid`, the last zxid the client saw.
    pub fn restore(
        &mut self,
        view: &TreeView<'_>,
        relative_zxid: i64,
        data: &[String],
        exist: &[String],
        child: &[String],
    ) -> Vec<WatcherEvent> {
        let ev = |event_type, path: &str| WatcherEvent {
            event_type,
            state: STATE_SYNC_CONNECTED,
            path: path.to_owned(),
        };
        let mut out = Vec::new();
        for p in data {
            match lookup(view, p) {
                None => out.push(ev(event_type::NODE_DELETED, p)),
                Some(n) if n.stat.mzxid > relative_zxid => {
                    out.push(ev(event_type::NODE_DATA_CHANGED, p))
                }
                Some(_) => {
                    self.watch_data(view, p);
                }
            }
        }
        for p in exist {
            match lookup(view, p) {
                Some(_) => out.push(ev(event_type::NODE_CREATED, p)),
                None => {
                    self.watch_exists(p);
                }
            }
        }
        for p in child {
            match lookup(view, p) {
                None => out.push(ev(event_type::NODE_DELETED, p)),
                Some(n) if n.stat.pzxid > relative_zxid => {
                    out.push(ev(event_type::NODE_CHILDREN_CHANGED, p))
                }
                Some(_) => {
                    self.watch_children(view, p);
                }
            }
        }
        out
    }
}
