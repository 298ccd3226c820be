//! Full-text search over one tenant's catalog with tantivy: an in-RAM index rebuilt with every
//! catalog snapshot, so it is always in step with what the list endpoints show.

use tantivy::{
    DocId, Index, IndexReader, ReloadPolicy, Score, SegmentReader, Term,
    collector::{Collector, SegmentCollector},
    columnar::Column,
    doc,
    query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery},
    schema::{FAST, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions},
};

use crate::domain::catalog::Product;

/// Relative weight of a match in each field.
const TITLE_BOOST: f32 = 3.0;
const ATTRIBUTES_BOOST: f32 = 1.5;
const DESCRIPTION_BOOST: f32 = 1.0;
/// An exact term outranks a fuzzy one.
const FUZZY_FACTOR: f32 = 0.3;
/// The fast field holding each document's position in the snapshot's product list.
const POSITION: &str = "pos";

/// The index keeps no stored documents: a hit is mapped back to its product through the
/// `pos` fast field, and the product's data comes from the catalog snapshot.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: [(Field, f32); 3],
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
    writer: tantivy::IndexWriter,
    /// title, description, attributes, pos.
    fields: [Field; 4],
    next: u64,
    attrs: String,
}

impl SearchIndexBuilder {
    pub fn add(&mut self, p: &Product) -> tantivy::Result<()> {
        let [title, description, attributes, pos] = self.fields;
        self.attrs.clear();
        for (k, val) in p.variants.iter().flat_map(|v| v.attributes.iter()) {
            if !self.attrs.is_empty() {
                self.attrs.push(' ');
            }
            self.attrs.push_str(k);
            self.attrs.push(' ');
            self.attrs.push_str(val);
        }
        self.writer.add_document(doc!(
            title => p.title.as_str(),
            description => p.description.as_str(),
            attributes => self.attrs.as_str(),
            pos => self.next,
        ))?;
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
        let [title, description, attributes, _] = self.fields;
        Ok(SearchIndex {
            index: self.index,
            reader,
            fields: [
                (title, TITLE_BOOST),
                (attributes, ATTRIBUTES_BOOST),
                (description, DESCRIPTION_BOOST),
            ],
        })
    }
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
        let title = schema.add_text_field("title", text.clone());
        let description = schema.add_text_field("description", text.clone());
        let attributes = schema.add_text_field("attributes", text);
        let pos = schema.add_u64_field(POSITION, FAST);
        let index = Index::create_in_ram(schema.build());
        // 15 MB is tantivy's minimum arena; it is freed when the writer drops.
        let writer = index.writer_with_num_threads(1, 15_000_000)?;
        Ok(SearchIndexBuilder {
            index,
            writer,
            fields: [title, description, attributes, pos],
            next: 0,
            attrs: String::new(),
        })
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
        let mut analyzer = self.index.tokenizer_for_field(self.fields[0].0)?;
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
        let mut hits = self.reader.searcher().search(&query, &AllMatches)?;
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
}
