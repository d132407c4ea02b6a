//! Content-based recipe: TF-IDF over item text and attributes.
//!
//! Each item's text ([`Dataset::item_text`]) is cut into terms: words of free
//! text (lower-cased; Chinese runs segmented with jieba when the `chinese`
//! feature is on, otherwise cut into character bigrams) and attribute tokens
//! written `field:value` (genres, year, decade, format, category), kept
//! whole. Items become L2-normalised TF-IDF vectors (`tf · ln(N / df)`);
//! item `j`'s score for a user is the sum of its cosine similarities to the
//! user's items, with each item's `neighbours` most similar items kept.

use std::collections::HashMap;

use rayon::prelude::*;

use super::sparsify;
use crate::Dataset;

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF)
}

#[cfg(feature = "chinese")]
fn segment(run: &str, out: &mut Vec<String>) {
    use std::sync::OnceLock;
    static JIEBA: OnceLock<jieba_rs::Jieba> = OnceLock::new();
    let jieba = JIEBA.get_or_init(jieba_rs::Jieba::new);
    out.extend(jieba.cut(run, true).into_iter().map(|t| t.word.to_owned()));
}

#[cfg(not(feature = "chinese"))]
fn segment(run: &str, out: &mut Vec<String>) {
    let chars: Vec<char> = run.chars().collect();
    if chars.len() == 1 {
        out.push(run.to_owned());
    }
    out.extend(chars.windows(2).map(|w| w.iter().collect::<String>()));
}

/// The terms of an item text.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for token in text.split_whitespace() {
        if token.contains(':') && !token.starts_with(':') {
            out.push(token.to_lowercase());
            continue;
        }
        let mut word = String::new();
        let mut cjk = String::new();
        let flush = |word: &mut String, cjk: &mut String, out: &mut Vec<String>| {
            if word.chars().count() > 1 {
                out.push(std::mem::take(word));
            }
            word.clear();
            if !cjk.is_empty() {
                segment(cjk, out);
                cjk.clear();
            }
        };
        for c in token.chars() {
            if is_cjk(c) {
                if !word.is_empty() {
                    flush(&mut word, &mut String::new(), &mut out);
                }
                cjk.push(c);
            } else if c.is_alphanumeric() {
                if !cjk.is_empty() {
                    flush(&mut String::new(), &mut cjk, &mut out);
                }
                word.extend(c.to_lowercase());
            } else {
                flush(&mut word, &mut cjk, &mut out);
            }
        }
        flush(&mut word, &mut cjk, &mut out);
    }
    out
}

/// L2-normalised TF-IDF vectors of every item: per item, (term index, weight).
pub fn tfidf(texts: &[String]) -> Vec<Vec<(u32, f32)>> {
    let mut vocab: HashMap<String, u32> = HashMap::new();
    let docs: Vec<Vec<(u32, f32)>> = texts
        .iter()
        .map(|t| {
            let mut tf: HashMap<u32, f32> = HashMap::new();
            for term in terms(t) {
                let next = vocab.len() as u32;
                *tf.entry(*vocab.entry(term).or_insert(next)).or_default() += 1.0;
            }
            let mut v: Vec<(u32, f32)> = tf.into_iter().collect();
            v.sort_unstable_by_key(|e| e.0);
            v
        })
        .collect();
    let mut df = vec![0f32; vocab.len()];
    for d in &docs {
        for &(t, _) in d {
            df[t as usize] += 1.0;
        }
    }
    let n = texts.len() as f32;
    docs.into_iter()
        .map(|d| {
            let mut v: Vec<(u32, f32)> = d.into_iter().map(|(t, tf)| (t, tf * (n / df[t as usize]).ln())).collect();
            let norm = v.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|e| e.1 /= norm);
            }
            v.retain(|e| e.1 > 0.0);
            v
        })
        .collect()
}

/// Cosine neighbours of every item by TF-IDF.
pub fn fit(ds: &Dataset, neighbours: usize) -> Vec<Vec<(u32, f32)>> {
    let vecs = tfidf(&ds.item_text);
    let n = vecs.len();
    let terms = vecs.iter().flatten().map(|e| e.0 as usize + 1).max().unwrap_or(0);
    let mut postings: Vec<Vec<(u32, f32)>> = vec![Vec::new(); terms];
    for (i, v) in vecs.iter().enumerate() {
        for &(t, w) in v {
            postings[t as usize].push((i as u32, w));
        }
    }
    (0..n)
        .into_par_iter()
        .map_init(
            || vec![0f32; n],
            |row, i| {
                row.fill(0.0);
                for &(t, w) in &vecs[i] {
                    for &(j, x) in &postings[t as usize] {
                        row[j as usize] += w * x;
                    }
                }
                sparsify(row, neighbours, i)
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_keep_attributes_and_split_words() {
        assert_eq!(
            terms("Toy Story (1995) class:Animation year:1995"),
            ["toy", "story", "1995", "class:animation", "year:1995"]
        );
        let zh = terms("Python数据分析 第3讲");
        assert!(zh.contains(&"python".to_owned()), "{zh:?}");
        assert!(zh.len() >= 3, "{zh:?}");
    }

    #[cfg(feature = "chinese")]
    #[test]
    fn chinese_is_segmented_into_words() {
        let t = terms("机器学习入门课程");
        assert!(t.contains(&"机器".to_owned()) || t.contains(&"机器学习".to_owned()), "{t:?}");
        assert!(t.contains(&"课程".to_owned()), "{t:?}");
    }

    #[test]
    fn similar_texts_are_neighbours() {
        let ds = Dataset {
            items: vec!["a".into(), "b".into(), "c".into()],
            item_text: vec!["class:Drama war".into(), "class:Drama war story".into(), "class:Comedy".into()],
            ..Dataset::default()
        };
        let s = fit(&ds, 5);
        assert_eq!(s[0].len(), 1);
        assert_eq!(s[0][0].0, 1);
        assert!(s[2].is_empty());
    }
}
