//! Full-text search over one tenant's catalog with tantivy: an in-RAM index rebuilt with every
//! catalog snapshot, so it is always in step with what the list endpoints show.

use tantivy::{
    Index, IndexReader, ReloadPolicy, TantivyDocument, Term,
    collector::TopDocs,
    doc,
    query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery},
    schema::{Field, IndexRecordOption, STORED, STRING, Schema, TEXT, Value as _},
};
use uuid::Uuid;

use crate::domain::catalog::Product;

/// Relative weight of a match in each field.
const TITLE_BOOST: f32 = 3.0;
const ATTRIBUTES_BOOST: f32 = 1.5;
const DESCRIPTION_BOOST: f32 = 1.0;
/// An exact term outranks a fuzzy one.
const FUZZY_FACTOR: f32 = 0.3;

pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    id: Field,
    fields: [(Field, f32); 3],
    size: usize,
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

impl SearchIndex {
    pub fn build(products: &[Product]) -> tantivy::Result<Self> {
        let mut schema = Schema::builder();
        let id = schema.add_text_field("id", STRING | STORED);
        let title = schema.add_text_field("title", TEXT);
        let description = schema.add_text_field("description", TEXT);
        let attributes = schema.add_text_field("attributes", TEXT);
        let index = Index::create_in_ram(schema.build());
        // 15 MB is tantivy's minimum arena; it is freed when the writer drops.
        let mut writer = index.writer_with_num_threads(1, 15_000_000)?;
        for p in products {
            let attrs: Vec<&str> = p
                .variants
                .iter()
                .flat_map(|v| {
                    v.attributes
                        .iter()
                        .flat_map(|(k, val)| [k.as_str(), val.as_str()])
                })
                .collect();
            writer.add_document(doc!(
                id => p.id.to_string(),
                title => p.title.as_str(),
                description => p.description.as_str(),
                attributes => attrs.join(" "),
            ))?;
        }
        writer.commit()?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            index,
            reader,
            id,
            fields: [
                (title, TITLE_BOOST),
                (attributes, ATTRIBUTES_BOOST),
                (description, DESCRIPTION_BOOST),
            ],
            size: products.len(),
        })
    }

    /// Every product matching all words of `text` (each word exactly or within its typo
    /// distance, in any field), best first. `None` when `text` holds no searchable word.
    pub fn search(&self, text: &str) -> tantivy::Result<Option<Vec<(Uuid, f32)>>> {
        let mut analyzer = self.index.tokenizer_for_field(self.fields[0].0)?;
        let mut words = Vec::new();
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            words.push(stream.token().text.clone());
        }
        words.truncate(16);
        if words.is_empty() {
            return Ok(None);
        }
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
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(self.size.max(1)))?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = doc
                .get_first(self.id)
                .and_then(|v| v.as_str())
                .and_then(|s| Uuid::parse_str(s).ok())
            {
                hits.push((id, score));
            }
        }
        Ok(Some(hits))
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
        let index = SearchIndex::build(&[mug.clone(), shirt.clone(), poster.clone()]).unwrap();

        let hits = index.search("ceramic mug").unwrap().unwrap();
        assert_eq!(
            hits.iter().map(|h| h.0).collect::<Vec<_>>(),
            vec![mug.id, poster.id],
            "title beats description"
        );
        assert_eq!(
            index.search("cerammic").unwrap().unwrap()[0].0,
            mug.id,
            "one typo still finds it"
        );
        assert_eq!(index.search("crimson").unwrap().unwrap()[0].0, shirt.id);
        assert!(index.search("bicycle").unwrap().unwrap().is_empty());
        assert!(index.search("  ").unwrap().is_none());
    }
}
