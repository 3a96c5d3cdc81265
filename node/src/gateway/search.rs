//! Event search: `q` matches words of the title, venue and genre and
//! tolerates one typo per word (Levenshtein distance 1 for words of four
//! letters or more) through a tantivy index in memory; the exact filters,
//! the date range and the order are applied to the matching events.

use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, Value, STORED, STRING, TEXT};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Results of one page at most.
pub const LIMIT_MAX: usize = 100;
/// Text matches considered per query at most.
const CANDIDATES_MAX: usize = 10_000;
/// Words of a query at most.
const QUERY_WORDS_MAX: usize = 8;
/// Longest query text. Search runs on the runtime's threads (with Raft, in a
/// node of both roles), so its cost per request must stay small.
pub(crate) const QUERY_BYTES_MAX: usize = 200;
/// Longest word matched with a typo: the automaton of a fuzzy term grows
/// with its length (and its distinct characters); longer words match exactly.
const FUZZY_WORD_CHARS_MAX: usize = 32;
/// Index writer memory.
const WRITER_BYTES: usize = 15_000_000;

/// An event as search sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventDoc {
    /// External id.
    pub event_id: String,
    /// Title.
    pub title: String,
    /// Venue name.
    pub venue_name: String,
    /// Genre.
    pub genre: String,
    /// City.
    pub city: String,
    /// Kind (`movie`, ...).
    pub kind: String,
    /// Language code.
    pub language: String,
    /// Start time.
    pub starts_at_ms: u64,
}

/// A search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Words to match (typo-tolerant).
    pub q: Option<String>,
    /// Exact city (case-insensitive).
    pub city: Option<String>,
    /// Exact kind.
    pub kind: Option<String>,
    /// Exact genre (case-insensitive).
    pub genre: Option<String>,
    /// Exact language (case-insensitive).
    pub language: Option<String>,
    /// Starts at or after.
    pub from_ms: Option<u64>,
    /// Starts before.
    pub to_ms: Option<u64>,
    /// Page size (capped at [`LIMIT_MAX`]).
    pub limit: usize,
    /// Events to skip.
    pub offset: usize,
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPage {
    /// Event ids, in order.
    pub event_ids: Vec<String>,
    /// Matches in all.
    pub total: usize,
}

/// Why a search or an update failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The index failed.
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The query has too many words.
    #[error("a query has at most {QUERY_WORDS_MAX} words")]
    TooManyWords,
    /// The query text is too long.
    #[error("a query has at most {QUERY_BYTES_MAX} bytes")]
    TooLong,
}

/// The search index of every event a gateway knows.
pub struct SearchIndex {
    id: Field,
    text: Field,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    docs: RwLock<BTreeMap<String, EventDoc>>,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

fn same(filter: &Option<String>, value: &str) -> bool {
    filter.as_ref().is_none_or(|f| f.trim().eq_ignore_ascii_case(value))
}

impl SearchIndex {
    /// An empty index.
    pub fn new() -> Result<SearchIndex, SearchError> {
        let mut schema = Schema::builder();
        let id = schema.add_text_field("event_id", STRING | STORED);
        let text = schema.add_text_field("text", TEXT);
        let index = Index::create_in_ram(schema.build());
        let writer = index.writer_with_num_threads(1, WRITER_BYTES)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(SearchIndex { id, text, writer: Mutex::new(writer), reader, docs: RwLock::new(BTreeMap::new()) })
    }

    /// Adds or replaces one event.
    pub fn upsert(&self, doc: EventDoc) -> Result<(), SearchError> {
        self.upsert_many(vec![doc])
    }

    /// Adds or replaces events, visible to searches when this returns.
    pub fn upsert_many(&self, docs: Vec<EventDoc>) -> Result<(), SearchError> {
        let mut writer = self.writer.lock().expect("search writer poisoned");
        for d in &docs {
            writer.delete_term(Term::from_field_text(self.id, &d.event_id));
            let text = format!("{} {} {}", d.title, d.venue_name, d.genre);
            writer.add_document(doc!(self.id => d.event_id.clone(), self.text => text))?;
        }
        writer.commit()?;
        self.reader.reload()?;
        let mut map = self.docs.write().expect("search docs poisoned");
        for d in docs {
            map.insert(d.event_id.clone(), d);
        }
        Ok(())
    }

    /// Ids of the events whose text matches every word of `q`, with scores.
    fn text_matches(&self, q: &str) -> Result<Option<BTreeMap<String, f32>>, SearchError> {
        if q.len() > QUERY_BYTES_MAX {
            return Err(SearchError::TooLong);
        }
        let words = words(q);
        if words.is_empty() {
            return Ok(None);
        }
        if words.len() > QUERY_WORDS_MAX {
            return Err(SearchError::TooManyWords);
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = words
            .iter()
            .map(|w| {
                let term = Term::from_field_text(self.text, w);
                let exact: Box<dyn Query> = Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs));
                let q: Box<dyn Query> = if (4..=FUZZY_WORD_CHARS_MAX).contains(&w.chars().count()) {
                    // Fuzzy matches all score alike, so an exact match is
                    // offered as a boosted alternative: it ranks first.
                    let boosted: Box<dyn Query> = Box::new(BoostQuery::new(exact, 2.0));
                    let fuzzy: Box<dyn Query> = Box::new(FuzzyTermQuery::new(term, 1, true));
                    Box::new(BooleanQuery::new(vec![(Occur::Should, boosted), (Occur::Should, fuzzy)]))
                } else {
                    exact
                };
                (Occur::Must, q)
            })
            .collect();
        let searcher = self.reader.searcher();
        let hits = searcher.search(&BooleanQuery::new(clauses), &TopDocs::with_limit(CANDIDATES_MAX))?;
        let mut out = BTreeMap::new();
        for (score, address) in hits {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = doc.get_first(self.id).and_then(|v| v.as_str()) {
                out.insert(id.to_string(), score);
            }
        }
        Ok(Some(out))
    }

    /// One page of events matching `q`: by relevance (with `q`), then start
    /// time, then id.
    pub fn search(&self, q: &SearchQuery) -> Result<SearchPage, SearchError> {
        let scores = match &q.q {
            Some(text) => self.text_matches(text)?,
            None => None,
        };
        let docs = self.docs.read().expect("search docs poisoned");
        let mut hits: Vec<(f32, &EventDoc)> = docs
            .values()
            .filter_map(|d| match &scores {
                Some(s) => s.get(&d.event_id).map(|score| (*score, d)),
                None => Some((0.0, d)),
            })
            .filter(|(_, d)| {
                same(&q.city, &d.city)
                    && same(&q.kind, &d.kind)
                    && same(&q.genre, &d.genre)
                    && same(&q.language, &d.language)
                    && q.from_ms.is_none_or(|f| d.starts_at_ms >= f)
                    && q.to_ms.is_none_or(|t| d.starts_at_ms < t)
            })
            .collect();
        hits.sort_by(|(sa, a), (sb, b)| {
            sb.total_cmp(sa).then(a.starts_at_ms.cmp(&b.starts_at_ms)).then(a.event_id.cmp(&b.event_id))
        });
        let total = hits.len();
        let limit = q.limit.clamp(1, LIMIT_MAX);
        let event_ids = hits.into_iter().skip(q.offset).take(limit).map(|(_, d)| d.event_id.clone()).collect();
        Ok(SearchPage { event_ids, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, title: &str, venue: &str, genre: &str, city: &str, kind: &str, at: u64) -> EventDoc {
        EventDoc {
            event_id: id.into(),
            title: title.into(),
            venue_name: venue.into(),
            genre: genre.into(),
            city: city.into(),
            kind: kind.into(),
            language: "en".into(),
            starts_at_ms: at,
        }
    }

    fn index() -> SearchIndex {
        let i = SearchIndex::new().unwrap();
        i.upsert_many(vec![
            doc("e1", "Avengers: Endgame", "PVR Phoenix", "action", "Mumbai", "movie", 300),
            doc("e2", "Coldplay: Music of the Spheres", "Marine Lines Stadium", "rock", "Mumbai", "concert", 200),
            doc("e3", "Hamlet", "Old Vic", "drama", "London", "theater", 100),
            doc("e4", "Arsenal v Spurs", "Emirates Stadium", "football", "London", "sports", 400),
        ])
        .unwrap();
        i
    }

    fn ids(i: &SearchIndex, q: SearchQuery) -> Vec<String> {
        i.search(&SearchQuery { limit: if q.limit == 0 { 10 } else { q.limit }, ..q }).unwrap().event_ids
    }

    fn text(q: &str) -> SearchQuery {
        SearchQuery { q: Some(q.into()), ..Default::default() }
    }

    #[test]
    fn long_queries_are_refused_and_long_words_match_exactly() {
        let i = index();
        let long = "a".repeat(QUERY_BYTES_MAX + 1);
        assert!(matches!(i.search(&text(&long)), Err(SearchError::TooLong)));
        // The longest query allowed, one word of CJK characters (three bytes
        // each, all distinct: the costliest automaton), answers at once.
        let cjk: String = (0..QUERY_BYTES_MAX / 3).map(|k| char::from_u32(0x4e00 + k as u32).unwrap()).collect();
        assert!(ids(&i, text(&cjk)).is_empty());
        assert!(ids(&i, text(&"avengers".repeat(4))).is_empty());
        assert_eq!(ids(&i, text("avangers")), ["e1"], "short words still tolerate a typo");
    }

    #[test]
    fn words_match_with_one_typo() {
        let i = index();
        assert_eq!(ids(&i, text("avangers")), ["e1"]);
        assert_eq!(ids(&i, text("Coldplay")), ["e2"]);
        let mut stadiums = ids(&i, text("stadium"));
        stadiums.sort();
        assert_eq!(stadiums, ["e2", "e4"], "both venues, in relevance order");
        assert_eq!(ids(&i, text("football")), ["e4"]);
        assert!(ids(&i, text("zzzzzz")).is_empty());
        assert!(ids(&i, text("avxxgers")).is_empty(), "two typos are too many");
    }

    #[test]
    fn an_exact_word_ranks_above_a_typo() {
        let i = SearchIndex::new().unwrap();
        // The typo'd title starts earlier, so only relevance puts the exact one first.
        i.upsert_many(vec![
            doc("t", "Stadiun Tour", "Hall", "pop", "Pune", "concert", 1),
            doc("x", "Stadium Nights", "Hall", "pop", "Pune", "concert", 2),
        ])
        .unwrap();
        assert_eq!(ids(&i, text("stadium")), ["x", "t"]);
    }

    #[test]
    fn filters_and_dates_apply() {
        let i = index();
        let london = SearchQuery { city: Some("london".into()), ..Default::default() };
        assert_eq!(ids(&i, london.clone()), ["e3", "e4"], "by start time");
        assert_eq!(ids(&i, SearchQuery { kind: Some("sports".into()), ..london }), ["e4"]);
        assert_eq!(ids(&i, SearchQuery { from_ms: Some(200), to_ms: Some(400), ..Default::default() }), ["e2", "e1"]);
        assert_eq!(
            ids(&i, SearchQuery { q: Some("stadium".into()), city: Some("Mumbai".into()), ..Default::default() }),
            ["e2"]
        );
    }

    #[test]
    fn pages_are_complete_and_upserts_replace() {
        let i = SearchIndex::new().unwrap();
        i.upsert_many(
            (0..1000).map(|n| doc(&format!("e{n:04}"), "Show", "Hall", "pop", "Pune", "concert", n)).collect(),
        )
        .unwrap();
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let page = i.search(&SearchQuery { limit: 100, offset, ..Default::default() }).unwrap();
            assert_eq!(page.total, 1000);
            if page.event_ids.is_empty() {
                break;
            }
            offset += page.event_ids.len();
            seen.extend(page.event_ids);
        }
        assert_eq!(seen.len(), 1000);
        seen.dedup();
        assert_eq!(seen.len(), 1000);
        i.upsert(doc("e0001", "Renamed", "Hall", "pop", "Pune", "concert", 1)).unwrap();
        assert_eq!(ids(&i, text("renamed")), ["e0001"]);
        assert_eq!(i.search(&SearchQuery { limit: 1, ..Default::default() }).unwrap().total, 1000);
        assert!(ids(&i, text("show")).iter().all(|id| id != "e0001"), "the old text is gone");
    }
}
