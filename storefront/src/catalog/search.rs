//! Full-text search over one tenant's catalog with tantivy: an in-RAM index built with each full
//! catalog load and updated by what changed with each incremental one, so it is always in step
//! with what the list endpoints show.
//!
//! A snapshot's [`SearchIndex`] reads one fixed commit of its tantivy index (its own
//! [`Searcher`]), so it never changes once built. [`SearchIndex::apply`] commits the changed
//! documents (delete by position, add) to the same tantivy index and returns a new
//! `SearchIndex` reading the new commit: older snapshots still read theirs (segments are
//! immutable; deletes are per-commit bitsets), and unchanged documents are shared.

use std::sync::Arc;

use parking_lot::Mutex;
use tantivy::{
    DocId, Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Score, Searcher,
    SegmentReader, TantivyDocument, Term,
    collector::{Collector, SegmentCollector},
    columnar::Column,
    directory::RamDirectory,
    doc,
    indexer::{IndexWriterOptions, LogMergePolicy},
    query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery},
    schema::{FAST, Field, INDEXED, IndexRecordOption, Schema, TextFieldIndexing, TextOptions},
};

use crate::domain::catalog::Product;

/// Relative weight of a match in each field.
const TITLE_BOOST: f32 = 3.0;
const ATTRIBUTES_BOOST: f32 = 1.5;
const DESCRIPTION_BOOST: f32 = 1.0;
/// An exact term outranks a fuzzy one.
const FUZZY_FACTOR: f32 = 0.3;
/// The fast (and indexed) field holding each document's position in the snapshot's product
/// list: hits map back to products through it, and updates delete documents by it.
const POSITION: &str = "pos";
/// tantivy's minimum indexing arena; freed when the writer drops.
const WRITER_ARENA: usize = 15_000_000;
/// [`LiveIndex::head`] after an update failed half-way: the index may hold part of it, so
/// nothing may be applied on top; the next load builds the index whole.
const POISONED: u64 = u64::MAX;

/// Why a search index could not be updated in place. Either way the caller builds it whole.
#[derive(Debug, thiserror::Error)]
pub enum SearchUpdateError {
    #[error(
        "the search index has moved past this snapshot (a newer or failed update); it must be built whole"
    )]
    Superseded,
    #[error("search index update failed: {0}")]
    Index(#[from] tantivy::TantivyError),
}

/// The fields of the schema every index has.
#[derive(Clone, Copy)]
struct Fields {
    title: Field,
    description: Field,
    attributes: Field,
    pos: Field,
}

/// A tantivy index shared by the snapshots derived from one full build.
struct LiveIndex {
    index: Index,
    /// Where the index's files are (in RAM): what it holds is what they add up to.
    files: RamDirectory,
    reader: IndexReader,
    fields: Fields,
    /// The generation of the newest [`SearchIndex`] over this index (only it may be updated),
    /// or [`POISONED`]. Held for the whole of an update, so updates never interleave.
    head: Mutex<u64>,
}

/// The index keeps no stored documents: a hit is mapped back to its product through the
/// `pos` fast field, and the product's data comes from the catalog snapshot.
pub struct SearchIndex {
    live: Arc<LiveIndex>,
    searcher: Searcher,
    generation: u64,
    fields: [(Field, f32); 3],
}

/// Builds documents, reusing one buffer for the attributes text.
struct Documents {
    fields: Fields,
    attrs: String,
}

impl Documents {
    fn of(&mut self, p: &Product, pos: u64) -> TantivyDocument {
        let f = self.fields;
        self.attrs.clear();
        for (k, val) in p.variants.iter().flat_map(|v| v.attributes.iter()) {
            if !self.attrs.is_empty() {
                self.attrs.push(' ');
            }
            self.attrs.push_str(k);
            self.attrs.push(' ');
            self.attrs.push_str(val);
        }
        doc!(
            f.title => p.title.as_str(),
            f.description => p.description.as_str(),
            f.attributes => self.attrs.as_str(),
            f.pos => pos,
        )
    }
}

/// Edits allowed for a query term: none for short words (too many false hits), one from four
/// letters, two from eight.
fn typo_distance(term: &str) -> u8 {
    match term.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// Collects every match as (product position, score).
struct AllMatches;

struct SegmentMatches {
    positions: Column<u64>,
    hits: Vec<(u32, Score)>,
}

impl Collector for AllMatches {
    type Fruit = Vec<(u32, Score)>;
    type Child = SegmentMatches;

    fn for_segment(&self, _ord: u32, reader: &SegmentReader) -> tantivy::Result<SegmentMatches> {
        Ok(SegmentMatches {
            positions: reader.fast_fields().u64(POSITION)?,
            hits: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(u32, Score)>>) -> tantivy::Result<Self::Fruit> {
        Ok(fruits.concat())
    }
}

impl SegmentCollector for SegmentMatches {
    type Fruit = Vec<(u32, Score)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if let Some(pos) = self.positions.first(doc) {
            self.hits.push((pos as u32, score));
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.hits
    }
}

/// Adds products in catalog order (the first added is position 0).
pub struct SearchIndexBuilder {
    index: Index,
    files: RamDirectory,
    writer: IndexWriter,
    docs: Documents,
    next: u64,
}

impl SearchIndexBuilder {
    pub fn add(&mut self, p: &Product) -> tantivy::Result<()> {
        self.writer.add_document(self.docs.of(p, self.next))?;
        self.next += 1;
        Ok(())
    }

    pub fn finish(mut self) -> tantivy::Result<SearchIndex> {
        self.writer.commit()?;
        drop(self.writer);
        let reader = self
            .index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let searcher = reader.searcher();
        let fields = self.docs.fields;
        Ok(SearchIndex {
            live: Arc::new(LiveIndex {
                index: self.index,
                files: self.files,
                reader,
                fields,
                head: Mutex::new(0),
            }),
            searcher,
            generation: 0,
            fields: [
                (fields.title, TITLE_BOOST),
                (fields.attributes, ATTRIBUTES_BOOST),
                (fields.description, DESCRIPTION_BOOST),
            ],
        })
    }
}

/// Merges for an index updated a few documents at a time: each update commits one small
/// segment, and segments of similar size merge eight at a time (log-structured), so a merge
/// rewrites few documents and the large segment of the full build is rarely touched.
fn update_merge_policy() -> LogMergePolicy {
    let mut policy = LogMergePolicy::default();
    policy.set_min_layer_size(64);
    policy
}

impl SearchIndex {
    /// Indexes `products`; a hit's position is the product's index in this slice.
    pub fn build(products: &[Product]) -> tantivy::Result<Self> {
        let mut builder = Self::builder()?;
        for p in products {
            builder.add(p)?;
        }
        builder.finish()
    }

    /// An empty index to add products to one by one.
    pub fn builder() -> tantivy::Result<SearchIndexBuilder> {
        let mut schema = Schema::builder();
        // Term frequencies only: queries are per-term (no phrases), so positions would be
        // memory for nothing.
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("default")
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        let fields = Fields {
            title: schema.add_text_field("title", text.clone()),
            description: schema.add_text_field("description", text.clone()),
            attributes: schema.add_text_field("attributes", text),
            pos: schema.add_u64_field(POSITION, FAST | INDEXED),
        };
        let files = RamDirectory::create();
        let index = Index::create(files.clone(), schema.build(), IndexSettings::default())?;
        let writer = index.writer_with_num_threads(1, WRITER_ARENA)?;
        Ok(SearchIndexBuilder {
            index,
            files,
            writer,
            docs: Documents {
                fields,
                attrs: String::new(),
            },
            next: 0,
        })
    }

    /// This index with the documents at `unindexed` removed and `indexed` added at their
    /// positions, as a new `SearchIndex` (this one is unchanged). Only the newest index of a
    /// build can be updated; after a failure none can ([`SearchUpdateError::Superseded`]).
    /// Costs a commit of the changed documents and the small merges it triggers, not a
    /// rebuild.
    pub fn apply(
        &self,
        unindexed: &[u32],
        indexed: &[(u32, Product)],
    ) -> Result<SearchIndex, SearchUpdateError> {
        let live = &self.live;
        let mut head = live.head.lock();
        if *head != self.generation {
            return Err(SearchUpdateError::Superseded);
        }
        *head = POISONED;
        // One indexing thread and one merge thread: an update is a handful of documents.
        let options = IndexWriterOptions::builder()
            .memory_budget_per_thread(WRITER_ARENA)
            .num_worker_threads(1)
            .num_merge_threads(1)
            .build();
        let mut writer: IndexWriter = live.index.writer_with_options(options)?;
        writer.set_merge_policy(Box::new(update_merge_policy()));
        let pos_field = live.fields.pos;
        for &pos in unindexed.iter().chain(indexed.iter().map(|(pos, _)| pos)) {
            writer.delete_term(Term::from_field_u64(pos_field, u64::from(pos)));
        }
        let mut docs = Documents {
            fields: live.fields,
            attrs: String::new(),
        };
        for (pos, p) in indexed {
            writer.add_document(docs.of(p, u64::from(*pos)))?;
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        live.reader.reload()?;
        let generation = self.generation + 1;
        let updated = SearchIndex {
            live: self.live.clone(),
            searcher: live.reader.searcher(),
            generation,
            fields: self.fields,
        };
        *head = generation;
        Ok(updated)
    }

    /// Bytes the index holds: the sum of its files in RAM (segments of the current commit, and
    /// of older ones until tantivy collects them; deletes are bitset files). Segment readers
    /// read those bytes in place, so the searcher adds only small per-segment structures.
    pub fn heap_bytes(&self) -> usize {
        self.live.files.total_mem_usage()
    }

    /// Every product matching all words of `text` (each word exactly or within its typo
    /// distance, in any field) as (position, score), best first (ties in position order).
    /// `None` when `text` holds no searchable word.
    pub fn search(&self, text: &str) -> tantivy::Result<Option<Vec<(u32, f32)>>> {
        let words = self.words(text)?;
        if words.is_empty() {
            return Ok(None);
        }
        self.search_words(&words).map(Some)
    }

    /// The searchable words of `text` as the index sees them (split, lower-cased; at most 16):
    /// two texts with the same words get the same answer.
    pub fn words(&self, text: &str) -> tantivy::Result<Vec<String>> {
        let mut analyzer = self.live.index.tokenizer_for_field(self.fields[0].0)?;
        let mut words = Vec::new();
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            words.push(stream.token().text.clone());
        }
        words.truncate(16);
        Ok(words)
    }

    /// As [`SearchIndex::search`], for words from [`SearchIndex::words`] (not empty).
    pub fn search_words(&self, words: &[String]) -> tantivy::Result<Vec<(u32, f32)>> {
        let per_word: Vec<(Occur, Box<dyn Query>)> = words
            .iter()
            .map(|word| {
                let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for (field, boost) in self.fields {
                    let term = Term::from_field_text(field, word);
                    let exact = TermQuery::new(term.clone(), IndexRecordOption::WithFreqs);
                    alternatives.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(exact), boost)),
                    ));
                    let distance = typo_distance(word);
                    if distance > 0 {
                        let fuzzy = FuzzyTermQuery::new(term, distance, true);
                        alternatives.push((
                            Occur::Should,
                            Box::new(BoostQuery::new(Box::new(fuzzy), boost * FUZZY_FACTOR)),
                        ));
                    }
                }
                (
                    Occur::Must,
                    Box::new(BooleanQuery::new(alternatives)) as Box<dyn Query>,
                )
            })
            .collect();
        let query = BooleanQuery::new(per_word);
        let mut hits = self.searcher.search(&query, &AllMatches)?;
        hits.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::tests::product;

    #[test]
    fn finds_by_title_description_and_attribute_with_a_typo() {
        let mut mug = product("Ceramic mug", 900, 1, &[]);
        mug.description = "A sturdy cup for coffee".into();
        let mut shirt = product("Cotton shirt", 2500, 2, &[]);
        shirt.variants[0]
            .attributes
            .insert("colour".into(), "crimson".into());
        let mut poster = product("Poster", 1500, 3, &[]);
        poster.description = "Features a ceramic mug".into();
        let index = SearchIndex::build(&[mug, shirt, poster]).unwrap();

        let hits = index.search("ceramic mug").unwrap().unwrap();
        assert_eq!(
            hits.iter().map(|h| h.0).collect::<Vec<_>>(),
            vec![0, 2],
            "title beats description"
        );
        assert_eq!(
            index.search("cerammic").unwrap().unwrap()[0].0,
            0,
            "one typo still finds it"
        );
        assert_eq!(index.search("crimson").unwrap().unwrap()[0].0, 1);
        assert!(index.search("bicycle").unwrap().unwrap().is_empty());
        assert!(index.search("  ").unwrap().is_none());
    }

    #[test]
    fn hits_map_back_to_product_positions_and_ties_keep_catalog_order() {
        let products: Vec<Product> = (0..300)
            .map(|i| {
                let title = if i % 7 == 0 {
                    format!("lamp {i}")
                } else {
                    format!("chair {i}")
                };
                product(&title, 100, (i % 60) as u32, &[])
            })
            .collect();
        let index = SearchIndex::build(&products).unwrap();
        let hits = index.search("lamp").unwrap().unwrap();
        assert_eq!(hits.len(), 43);
        for (pos, _) in &hits {
            assert!(products[*pos as usize].title.starts_with("lamp "));
        }
        let number = index.search("147").unwrap().unwrap();
        assert_eq!(number.iter().map(|h| h.0).collect::<Vec<_>>(), vec![147]);
        // Equal scores (same title length, one occurrence) come in catalog order.
        let positions: Vec<u32> = hits.iter().map(|h| h.0).collect();
        for w in hits.windows(2) {
            assert!(
                w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0),
                "{positions:?}"
            );
        }
    }

    #[test]
    fn an_update_changes_only_the_new_index_and_only_the_newest_can_be_updated() {
        let mug = product("Ceramic mug", 900, 1, &[]);
        let shirt = product("Cotton shirt", 2500, 2, &[]);
        let table = product("Oak table", 9000, 3, &[]);
        let first = SearchIndex::build(&[mug.clone(), shirt, table]).unwrap();
        let mut cup = mug.clone();
        cup.title = "Porcelain cup".into();
        let scarf = product("Wool scarf", 1900, 4, &[]);
        // Position 0 renamed, 1 deleted, 3 added.
        let second = first.apply(&[0, 1], &[(0, cup), (3, scarf)]).unwrap();
        let hits = |index: &SearchIndex, q: &str| -> Vec<u32> {
            index
                .search(q)
                .unwrap()
                .unwrap()
                .into_iter()
                .map(|h| h.0)
                .collect()
        };
        assert_eq!(hits(&second, "porcelain"), vec![0], "found by its new name");
        assert!(hits(&second, "ceramic").is_empty(), "not by its old one");
        assert!(hits(&second, "shirt").is_empty(), "deleted");
        assert_eq!(hits(&second, "scarf"), vec![3]);
        assert_eq!(hits(&second, "table"), vec![2], "untouched");
        // The first snapshot's index reads its own commit still.
        assert_eq!(hits(&first, "ceramic"), vec![0]);
        assert_eq!(hits(&first, "shirt"), vec![1]);
        assert!(hits(&first, "porcelain").is_empty());
        assert!(matches!(
            first.apply(&[], &[]),
            Err(SearchUpdateError::Superseded)
        ));
        assert!(second.apply(&[], &[]).is_ok());
    }

    #[test]
    fn many_small_updates_merge_and_keep_every_match() {
        let products: Vec<Product> = (0..200)
            .map(|i| product(&format!("chair {i}"), 100, (i % 60) as u32, &[]))
            .collect();
        let mut index = SearchIndex::build(&products).unwrap();
        // Eighty updates of one product each: more than enough commits to trigger merges.
        for i in 0..80u32 {
            let mut p = products[i as usize].clone();
            p.title = format!("lamp {i}");
            index = index.apply(&[i], &[(i, p)]).unwrap();
        }
        let lamps = index.search("lamp").unwrap().unwrap();
        let mut positions: Vec<u32> = lamps.iter().map(|h| h.0).collect();
        positions.sort_unstable();
        assert_eq!(positions, (0..80).collect::<Vec<_>>());
        assert_eq!(index.search("chair").unwrap().unwrap().len(), 120);
        assert!(
            index.searcher.segment_readers().len() < 20,
            "segments were merged: {}",
            index.searcher.segment_readers().len()
        );
    }
}
