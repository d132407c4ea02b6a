//! Loaders for data in RecBole's "atomic" format, and train / validation /
//! test splits of it.
//!
//! An atomic file is tab-separated UTF-8 with a header line naming each
//! column as `name:type` (`token`, `token_seq`, `float`, `float_seq`), for
//! example `user_id:token`, `item_id:token`, `rating:float`, `timestamp:float`.
//! A data set folder `DIR` holds `DIR/<name>.inter` (interactions) and
//! optionally `<name>.item` and `<name>.user`; a split folder holds
//! `train.inter`, `valid.inter` and `test.inter`.
//!
//! Every interaction counts as positive feedback (ratings are kept in the
//! files but not used as weights), as in RecBole's full-ranking protocol.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::{Dataset, Error, Result};

/// One atomic file: column names and types, and its rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AtomicFile {
    /// `(name, type)` of each column.
    pub columns: Vec<(String, String)>,
    /// The values, one `Vec` per line, as text.
    pub rows: Vec<Vec<String>>,
}

impl AtomicFile {
    /// Parses the text of an atomic file.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let mut lines = text.lines();
        let header = lines.next().ok_or_else(|| Error::Data(format!("{origin}: empty file")))?;
        let columns = header
            .split('\t')
            .map(|c| {
                let (name, ty) = c.trim().split_once(':').unwrap_or((c.trim(), "token"));
                (name.to_owned(), ty.to_owned())
            })
            .collect::<Vec<_>>();
        let mut rows = Vec::new();
        for (n, line) in lines.enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row: Vec<String> = line.split('\t').map(|v| v.trim().to_owned()).collect();
            if row.len() != columns.len() {
                return Err(Error::Data(format!(
                    "{origin}, line {}: {} fields, header has {}",
                    n + 2,
                    row.len(),
                    columns.len()
                )));
            }
            rows.push(row);
        }
        Ok(Self { columns, rows })
    }

    /// Reads and parses a file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io { path: path.to_owned(), source: e })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Index of the column named `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(n, _)| n == name)
    }

    fn required(&self, name: &str, origin: &Path) -> Result<usize> {
        self.column(name).ok_or_else(|| Error::Data(format!("{}: no `{name}` column", origin.display())))
    }
}

/// One interaction: user token, item token, time (Unix seconds, 0 if none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interaction {
    /// User id.
    pub user: String,
    /// Item id.
    pub item: String,
    /// Time in Unix seconds (0 when the file has no timestamp).
    pub time: i64,
}

/// Reads the interactions of an `.inter` file.
pub fn read_interactions(path: &Path) -> Result<Vec<Interaction>> {
    let f = AtomicFile::read(path)?;
    let (u, i) = (f.required("user_id", path)?, f.required("item_id", path)?);
    let t = f.column("timestamp");
    f.rows
        .iter()
        .map(|r| {
            let time = match t {
                Some(t) => {
                    r[t].parse::<f64>().map_err(|e| Error::Data(format!("{}: timestamp: {e}", path.display())))? as i64
                }
                None => 0,
            };
            Ok(Interaction { user: r[u].clone(), item: r[i].clone(), time })
        })
        .collect()
}

/// A data set split for offline evaluation: the training data, and per
/// training user the held-out validation and test items (indices into
/// `train.items`).
#[derive(Clone, Debug, Default)]
pub struct Split {
    /// What recipes learn from.
    pub train: Dataset,
    /// Per user, validation items.
    pub valid: Vec<Vec<u32>>,
    /// Per user, aligned with `valid`: the time (Unix seconds) of each validation interaction.
    pub valid_times: Vec<Vec<i64>>,
    /// Per user, test items.
    pub test: Vec<Vec<u32>>,
}

impl Split {
    /// The training data with the validation interactions (at their own
    /// times) added: what the final model is refitted on before the test.
    pub fn train_and_valid(&self) -> Dataset {
        let mut ds = self.train.clone();
        let t = ds.latest_time();
        let per_user = ds
            .positives
            .iter()
            .zip(&ds.times)
            .enumerate()
            .map(|(u, (p, ts))| {
                let v = self.valid.get(u).map_or(&[][..], Vec::as_slice);
                let vt = self.valid_times.get(u).map_or(&[][..], Vec::as_slice);
                let held = v.iter().enumerate().map(|(k, &i)| (i, vt.get(k).copied().unwrap_or(t)));
                p.iter().copied().zip(ts.iter().copied()).chain(held).collect()
            })
            .collect();
        ds.set_interactions(per_user);
        ds.window.events += self.valid.iter().map(Vec::len).sum::<usize>() as u64;
        ds
    }
}

/// The data set name of a folder: its last path component (`…/ml-100k` → `ml-100k`).
fn dataset_name(dir: &Path) -> Result<String> {
    dir.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::Data(format!("{}: not a data set folder", dir.display())))
}

fn path_in(dir: &Path, name: &str, ext: &str) -> PathBuf {
    dir.join(format!("{name}.{ext}"))
}

/// Item ids and texts of a data set folder (`<name>.item`; empty if there is none).
fn read_items(dir: &Path) -> Result<Vec<(String, String)>> {
    let name = dataset_name(dir)?;
    let path = path_in(dir, &name, "item");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let f = AtomicFile::read(&path)?;
    let id = f.required("item_id", &path)?;
    Ok(f.rows
        .iter()
        .map(|r| {
            let mut text = String::new();
            for (c, (col, ty)) in f.columns.iter().enumerate() {
                if c == id || r[c].is_empty() {
                    continue;
                }
                if !text.is_empty() {
                    text.push(' ');
                }
                match ty.as_str() {
                    // Free text (titles) stays words; other fields become attribute tokens.
                    "token_seq" if col.contains("title") || col.contains("name") => text.push_str(&r[c]),
                    "token_seq" => text
                        .push_str(&r[c].split_whitespace().map(|v| format!("{col}:{v}")).collect::<Vec<_>>().join(" ")),
                    _ => {
                        text.push_str(&format!("{col}:{}", r[c].replace(' ', "_")));
                        if col.contains("year")
                            && let Ok(y) = r[c].parse::<i32>()
                        {
                            text.push_str(&format!(" decade:{}", y / 10 * 10));
                        }
                    }
                }
            }
            (r[id].clone(), text)
        })
        .collect())
}

/// User attributes of a data set folder (`<name>.user`; empty if there is
/// none): per user id, tokens `field:value`; ages become decades (`age:20`),
/// zip codes their first digit.
fn read_users(dir: &Path) -> Result<HashMap<String, Vec<String>>> {
    let name = dataset_name(dir)?;
    let path = path_in(dir, &name, "user");
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let f = AtomicFile::read(&path)?;
    let id = f.required("user_id", &path)?;
    Ok(f.rows
        .iter()
        .map(|r| {
            let attrs = f
                .columns
                .iter()
                .enumerate()
                .filter(|(c, _)| *c != id)
                .filter(|(c, _)| !r[*c].is_empty())
                .map(|(c, (col, _))| match col.as_str() {
                    "age" => format!("age:{}", r[c].parse::<u32>().map_or(0, |a| a / 10 * 10)),
                    "zip_code" => format!("zip:{}", r[c].chars().next().unwrap_or('-')),
                    _ => format!("{col}:{}", r[c].replace(' ', "_")),
                })
                .collect();
            (r[id].clone(), attrs)
        })
        .collect())
}

/// Builds a split from interaction lists that share one user and item index.
fn build(items: Vec<(String, String)>, users: HashMap<String, Vec<String>>, parts: [Vec<Interaction>; 3]) -> Split {
    let mut ds = Dataset::default();
    let mut item_index: HashMap<String, u32> = HashMap::new();
    for (id, text) in items {
        if item_index.contains_key(&id) {
            continue;
        }
        item_index.insert(id.clone(), ds.items.len() as u32);
        ds.items.push(id);
        ds.item_text.push(text);
    }
    let mut user_index: HashMap<String, u32> = HashMap::new();
    for part in &parts {
        for x in part {
            if !item_index.contains_key(&x.item) {
                item_index.insert(x.item.clone(), ds.items.len() as u32);
                ds.items.push(x.item.clone());
                ds.item_text.push(String::new());
            }
            if !user_index.contains_key(&x.user) {
                user_index.insert(x.user.clone(), ds.users.len() as u32);
                ds.users.push(x.user.clone());
            }
        }
    }
    let (nu, ni) = (ds.users.len(), ds.items.len());
    ds.user_attributes = ds.users.iter().map(|u| users.get(u).cloned().unwrap_or_default()).collect();
    ds.item_category = vec![knowedge_scoring::model::NO_CATEGORY; ni];
    ds.item_price = vec![f32::NAN; ni];
    ds.owned = vec![Vec::new(); nu];
    let [train, valid, test] = parts;
    let mut pairs = vec![Vec::new(); nu];
    for x in &train {
        pairs[user_index[&x.user] as usize].push((item_index[&x.item], x.time));
        ds.window.events += 1;
    }
    let from = train.iter().map(|x| x.time).min();
    let to = train.iter().map(|x| x.time).max();
    ds.window.from = from.and_then(|t| chrono::DateTime::from_timestamp(t, 0));
    ds.window.to = to.and_then(|t| chrono::DateTime::from_timestamp(t, 0));
    ds.set_interactions(pairs);
    // Per user, held-out (item, latest time), sorted by item.
    let held = |part: &[Interaction]| {
        let mut out: Vec<Vec<(u32, i64)>> = vec![Vec::new(); nu];
        for x in part {
            out[user_index[&x.user] as usize].push((item_index[&x.item], x.time));
        }
        for (u, v) in out.iter_mut().enumerate() {
            v.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            v.dedup_by_key(|e| e.0);
            // An item is held out only if it is not in the user's training data.
            v.retain(|(i, _)| ds.positives[u].binary_search(i).is_err());
        }
        out
    };
    let valid_pairs = held(&valid);
    let valid: Vec<Vec<u32>> = valid_pairs.iter().map(|v| v.iter().map(|e| e.0).collect()).collect();
    let valid_times: Vec<Vec<i64>> = valid_pairs.iter().map(|v| v.iter().map(|e| e.1).collect()).collect();
    let mut test: Vec<Vec<u32>> = held(&test).into_iter().map(|v| v.into_iter().map(|e| e.0).collect()).collect();
    for (t, v) in test.iter_mut().zip(&valid) {
        t.retain(|i| v.binary_search(i).is_err());
    }
    Split { train: ds, valid, valid_times, test }
}

/// Loads a data set folder (for item texts) and a split folder
/// (`train.inter`, `valid.inter`, `test.inter`).
pub fn load_split(data_dir: &Path, split_dir: &Path) -> Result<Split> {
    let items = read_items(data_dir)?;
    let read = |n: &str| read_interactions(&split_dir.join(format!("{n}.inter")));
    Ok(build(items, read_users(data_dir)?, [read("train")?, read("valid")?, read("test")?]))
}

/// Loads all interactions of a data set folder (`<name>.inter`) as one training set.
pub fn load_dataset(data_dir: &Path) -> Result<Dataset> {
    let name = dataset_name(data_dir)?;
    let items = read_items(data_dir)?;
    let all = read_interactions(&path_in(data_dir, &name, "inter"))?;
    Ok(build(items, read_users(data_dir)?, [all, Vec::new(), Vec::new()]).train)
}

/// A fresh per-user random split of a data set folder's `<name>.inter`:
/// each user's interactions are shuffled with `seed`, then
/// `round(0.8 n)` go to training, `round(0.1 n)` to test and the rest to
/// validation (the proportions of `split-2026`).
pub fn random_split(data_dir: &Path, seed: u64) -> Result<Split> {
    let name = dataset_name(data_dir)?;
    let items = read_items(data_dir)?;
    let all = read_interactions(&path_in(data_dir, &name, "inter"))?;
    let mut by_user: Vec<Vec<Interaction>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for x in all {
        let u = *index.entry(x.user.clone()).or_insert_with(|| {
            by_user.push(Vec::new());
            by_user.len() - 1
        });
        by_user[u].push(x);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut valid, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for mut list in by_user {
        list.shuffle(&mut rng);
        let n = list.len() as f64;
        let n_train = (0.8 * n).round() as usize;
        let n_test = (0.1 * n).round() as usize;
        let mut it = list.into_iter();
        train.extend(it.by_ref().take(n_train));
        test.extend(it.by_ref().take(n_test));
        valid.extend(it);
    }
    Ok(build(items, read_users(data_dir)?, [train, valid, test]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_atomic_files() {
        let f = AtomicFile::parse("user_id:token\titem_id:token\trating:float\n1\t10\t4\n2\t11\t5\n", "t").unwrap();
        assert_eq!(f.columns[2], ("rating".to_owned(), "float".to_owned()));
        assert_eq!(f.rows.len(), 2);
        assert_eq!(f.column("item_id"), Some(1));
        assert!(AtomicFile::parse("a:token\tb:token\n1\n", "t").is_err());
        assert!(AtomicFile::parse("", "t").is_err());
    }

    #[test]
    fn split_shares_one_index_and_holds_out_unseen_items() {
        let x = |u: &str, i: &str, t| Interaction { user: u.into(), item: i.into(), time: t };
        let s = build(
            vec![("a".into(), "A movie:title".into())],
            HashMap::from([("2".to_owned(), vec!["age:20".to_owned()])]),
            [
                vec![x("1", "a", 5), x("1", "b", 3), x("1", "a", 9), x("2", "c", 1)],
                vec![x("1", "c", 2), x("1", "a", 2)],
                vec![x("2", "a", 3), x("1", "c", 4), x("1", "d", 4)],
            ],
        );
        assert_eq!(s.train.items, ["a", "b", "c", "d"]);
        assert_eq!(s.train.positives, vec![vec![0, 1], vec![2]]);
        assert_eq!(s.train.times, vec![vec![9, 3], vec![1]]);
        assert_eq!(s.valid, vec![vec![2], vec![]]);
        assert_eq!(s.test, vec![vec![3], vec![0]]);
        assert_eq!(s.train.item_text[0], "A movie:title");
        assert_eq!(s.valid_times, vec![vec![2], vec![]]);
        let full = s.train_and_valid();
        assert_eq!(full.positives[0], vec![0, 1, 2]);
        // Validation interactions keep their own times.
        assert_eq!(full.times[0], vec![9, 3, 2]);
        assert_eq!(full.window.events, s.train.window.events + 1);
        assert_eq!(s.train.user_attributes, vec![vec![], vec!["age:20".to_owned()]]);
    }
}
