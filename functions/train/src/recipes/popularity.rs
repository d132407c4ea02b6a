//! Non-personalised recipes: popularity and trending.

use crate::Dataset;

/// Item popularity: per item, the sum over learners of their strongest
/// engagement weight with it (1, or 3 for an item the learner owns: a
/// conversion). Without ownership data this counts users per item.
pub fn counts(ds: &Dataset) -> Vec<f32> {
    let mut s = vec![0f32; ds.items.len()];
    for (u, items) in ds.positives.iter().enumerate() {
        let owned = ds.owned.get(u).map_or(&[][..], Vec::as_slice);
        for &i in items {
            s[i as usize] += if owned.binary_search(&i).is_ok() { 3.0 } else { 1.0 };
        }
    }
    s
}

/// Time-decayed popularity: each user-item engagement weighs
/// `2^(-age / half_life)`, age measured from the latest event in the data.
/// Ties (equal scores) keep the order of plain popularity through a tiny
/// count term.
pub fn trending(ds: &Dataset, half_life_days: f64) -> Vec<f32> {
    let now = ds.latest_time();
    let half_life = (half_life_days * 86_400.0).max(1.0);
    let mut s = vec![0f64; ds.items.len()];
    for (items, times) in ds.positives.iter().zip(&ds.times) {
        for (&i, &t) in items.iter().zip(times) {
            let age = (now - t).max(0) as f64;
            s[i as usize] += (-age / half_life).exp2() + 1e-6;
        }
    }
    s.into_iter().map(|x| x as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_engagement_weighs_more() {
        let mut ds = Dataset { items: vec!["a".into(), "b".into()], ..Dataset::default() };
        let day = 86_400;
        ds.set_interactions(vec![vec![(0, 0), (1, 100 * day)], vec![(0, 10 * day)]]);
        assert_eq!(counts(&ds), vec![2.0, 1.0]);
        let t = trending(&ds, 10.0);
        assert!(t[1] > t[0], "{t:?}");
        assert!((t[1] - 1.0).abs() < 1e-4);
    }
}
