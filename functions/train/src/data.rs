//! Training data: the user-item interactions of the lake.

use std::collections::HashMap;

use knowedge_format::artifact::TrainingWindow;
use knowedge_format::event::EventType;
use knowedge_lake::{CatalogueItem, StoredEvent};
use knowedge_scoring::model::NO_CATEGORY;

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
    /// Per user, aligned with `positives`: the latest time (Unix seconds) of each engagement.
    pub times: Vec<Vec<i64>>,
    /// Per item, text and attributes for content-based recipes (title, format, category, …).
    pub item_text: Vec<String>,
    /// Per user, attribute tokens `field:value` (age group, gender, …); may be empty.
    pub user_attributes: Vec<Vec<String>>,
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
            ds.item_text.push(format!("{} format:{} category:{}", c.title, c.format, c.category));
        }
        let mut user_index: HashMap<&str, u32> = HashMap::new();
        let mut pairs: Vec<Vec<(u32, i64)>> = Vec::new();
        for e in events {
            let ev = &e.event;
            let Some(item) = &ev.item_id else { continue };
            if ev.event_type == EventType::Rate && ev.rating.is_some_and(|r| r < 3) {
                continue;
            }
            let u = *user_index.entry(ev.user_id.as_str()).or_insert_with(|| {
                ds.users.push(ev.user_id.clone());
                ds.positives.push(Vec::new());
                pairs.push(Vec::new());
                ds.owned.push(Vec::new());
                (ds.users.len() - 1) as u32
            });
            let i = *item_index.entry(item.clone()).or_insert_with(|| {
                ds.items.push(item.clone());
                ds.item_category.push(NO_CATEGORY);
                ds.item_price.push(f32::NAN);
                ds.item_text.push(String::new());
                (ds.items.len() - 1) as u32
            });
            pairs[u as usize].push((i, ev.ts.timestamp()));
            if ev.event_type.is_conversion() {
                ds.owned[u as usize].push(i);
            }
            ds.window.events += 1;
            ds.window.from = Some(ds.window.from.map_or(ev.ts, |f| f.min(ev.ts)));
            ds.window.to = Some(ds.window.to.map_or(ev.ts, |t| t.max(ev.ts)));
        }
        for v in ds.owned.iter_mut() {
            v.sort_unstable();
            v.dedup();
        }
        ds.set_interactions(pairs);
        ds
    }

    /// Sets `positives` and `times` from per-user (item, time) pairs: sorted by
    /// item, one entry per item with its latest time.
    pub fn set_interactions(&mut self, per_user: Vec<Vec<(u32, i64)>>) {
        self.positives.clear();
        self.times.clear();
        for mut list in per_user {
            list.sort_unstable();
            let (mut items, mut times): (Vec<u32>, Vec<i64>) = (Vec::with_capacity(list.len()), Vec::new());
            for (i, t) in list {
                if items.last() == Some(&i) {
                    if let Some(last) = times.last_mut() {
                        *last = (*last).max(t);
                    }
                } else {
                    items.push(i);
                    times.push(t);
                }
            }
            self.positives.push(items);
            self.times.push(times);
        }
    }

    /// The latest interaction time in the data (Unix seconds), 0 if none.
    pub fn latest_time(&self) -> i64 {
        self.times.iter().flatten().copied().max().unwrap_or(0)
    }

    /// Number of (user, item) positive pairs.
    pub fn pairs(&self) -> usize {
        self.positives.iter().map(Vec::len).sum()
    }
}
