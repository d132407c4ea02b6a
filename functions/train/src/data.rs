//! Training data: the user-item interactions of the lake.

use std::collections::HashMap;

use knowedge_lake::{CatalogueItem, StoredEvent};
use knowedge_shared::artifact::TrainingWindow;
use knowedge_shared::event::EventType;
use knowedge_shared::model::NO_CATEGORY;

/// Users, items and who engaged with what.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// Pseudonymous user ids (row order).
    pub users: Vec<String>,
    /// Item ids (row order): the catalogue first, then items only seen in events.
    pub items: Vec<String>,
    /// Category names.
    pub categories: Vec<String>,
    /// Category index per item ([`NO_CATEGORY`] if unknown).
    pub item_category: Vec<u32>,
    /// Price per item (NaN if unknown).
    pub item_price: Vec<f32>,
    /// Per user, the sorted items they engaged with positively.
    pub positives: Vec<Vec<u32>>,
    /// Per user, the sorted items they bought or subscribed to.
    pub owned: Vec<Vec<u32>>,
    /// The events' time span.
    pub window: TrainingWindow,
}

impl Dataset {
    /// Builds the data set. Every item event counts as positive engagement,
    /// except ratings below 3.
    pub fn from_events(events: &[StoredEvent], catalogue: &[CatalogueItem]) -> Self {
        let mut ds = Dataset::default();
        let mut item_index: HashMap<String, u32> = HashMap::new();
        let mut cat_index: HashMap<String, u32> = HashMap::new();
        for c in catalogue {
            if item_index.contains_key(&c.id) {
                continue;
            }
            item_index.insert(c.id.clone(), ds.items.len() as u32);
            ds.items.push(c.id.clone());
            let next = cat_index.len() as u32;
            let ci = *cat_index.entry(c.category.clone()).or_insert_with(|| {
                ds.categories.push(c.category.clone());
                next
            });
            ds.item_category.push(ci);
            ds.item_price.push(c.price as f32);
        }
        let mut user_index: HashMap<&str, u32> = HashMap::new();
        for e in events {
            let ev = &e.event;
            let Some(item) = &ev.item_id else { continue };
            if ev.event_type == EventType::Rate && ev.rating.is_some_and(|r| r < 3) {
                continue;
            }
            let u = *user_index.entry(ev.user_id.as_str()).or_insert_with(|| {
                ds.users.push(ev.user_id.clone());
                ds.positives.push(Vec::new());
                ds.owned.push(Vec::new());
                (ds.users.len() - 1) as u32
            });
            let i = *item_index.entry(item.clone()).or_insert_with(|| {
                ds.items.push(item.clone());
                ds.item_category.push(NO_CATEGORY);
                ds.item_price.push(f32::NAN);
                (ds.items.len() - 1) as u32
            });
            ds.positives[u as usize].push(i);
            if ev.event_type.is_conversion() {
                ds.owned[u as usize].push(i);
            }
            ds.window.events += 1;
            ds.window.from = Some(ds.window.from.map_or(ev.ts, |f| f.min(ev.ts)));
            ds.window.to = Some(ds.window.to.map_or(ev.ts, |t| t.max(ev.ts)));
        }
        for v in ds.positives.iter_mut().chain(ds.owned.iter_mut()) {
            v.sort_unstable();
            v.dedup();
        }
        ds
    }

    /// Number of (user, item) positive pairs.
    pub fn pairs(&self) -> usize {
        self.positives.iter().map(Vec::len).sum()
    }
}
