//! Porter's stemmer (M.F. Porter, 1980), as SQLite's FTS5 runs it: with the
//! two changes of Porter's own later code (`-bli` to `-ble`, `-logi` to
//! `-log`), and on lowercase ASCII words of 3 to 64 bytes only; anything
//! else is left as it is. The indexes stem in the database; this one tells
//! the snippet which words of a message matched.

/// The stem of a lowercase word.
pub fn stem(word: &str) -> String {
    if !(3..=64).contains(&word.len()) || !word.bytes().all(|b| b.is_ascii_lowercase()) {
        return word.to_owned();
    }
    let mut w = word.as_bytes().to_vec();
    step1ab(&mut w);
    step1c(&mut w);
    step2(&mut w);
    step3(&mut w);
    step4(&mut w);
    step5(&mut w);
    String::from_utf8(w).unwrap_or_else(|_| word.to_owned())
}

/// Is `w[i]` a consonant? `y` is one at the start or after a vowel.
fn consonant(w: &[u8], i: usize) -> bool {
    match w[i] {
        b'a' | b'e' | b'i' | b'o' | b'u' => false,
        b'y' => i == 0 || !consonant(w, i - 1),
        _ => true,
    }
}

/// m: the number of vowel-consonant sequences in `w` ([C](VC)^m[V]).
fn measure(w: &[u8]) -> usize {
    let mut m = 0;
    let mut i = 0;
    while i < w.len() && consonant(w, i) {
        i += 1;
    }
    while i < w.len() {
        while i < w.len() && !consonant(w, i) {
            i += 1;
        }
        if i == w.len() {
            break;
        }
        while i < w.len() && consonant(w, i) {
            i += 1;
        }
        m += 1;
    }
    m
}

fn has_vowel(w: &[u8]) -> bool {
    (0..w.len()).any(|i| !consonant(w, i))
}

fn double_consonant(w: &[u8]) -> bool {
    let n = w.len();
    n >= 2 && w[n - 1] == w[n - 2] && consonant(w, n - 1)
}

/// *o: ends consonant-vowel-consonant, the last not w, x or y.
fn cvc(w: &[u8]) -> bool {
    let n = w.len();
    n >= 3
        && consonant(w, n - 3)
        && !consonant(w, n - 2)
        && consonant(w, n - 1)
        && !matches!(w[n - 1], b'w' | b'x' | b'y')
}

/// If `w` ends in `suffix`, the stem before it.
fn before<'a>(w: &'a [u8], suffix: &str) -> Option<&'a [u8]> {
    w.strip_suffix(suffix.as_bytes())
}

fn replace(w: &mut Vec<u8>, suffix_len: usize, with: &str) {
    w.truncate(w.len() - suffix_len);
    w.extend_from_slice(with.as_bytes());
}

/// The first rule whose suffix ends `w` decides: replaced when the stem
/// before it has a measure above `min`.
fn rules(w: &mut Vec<u8>, min: usize, list: &[(&str, &str)]) {
    for (suffix, with) in list {
        if let Some(stem) = before(w, suffix) {
            if measure(stem) > min {
                replace(w, suffix.len(), with);
            }
            return;
        }
    }
}

fn step1ab(w: &mut Vec<u8>) {
    if w.ends_with(b"sses") || w.ends_with(b"ies") {
        w.truncate(w.len() - 2);
    } else if w.ends_with(b"s") && !w.ends_with(b"ss") {
        w.pop();
    }
    if let Some(stem) = before(w, "eed") {
        if measure(stem) > 0 {
            w.pop();
        }
        return;
    }
    let cut = ["ed", "ing"].into_iter().find(|s| before(w, s).is_some_and(has_vowel));
    let Some(cut) = cut else { return };
    w.truncate(w.len() - cut.len());
    if w.ends_with(b"at") || w.ends_with(b"bl") || w.ends_with(b"iz") {
        w.push(b'e');
    } else if double_consonant(w) && !matches!(w[w.len() - 1], b'l' | b's' | b'z') {
        w.pop();
    } else if measure(w) == 1 && cvc(w) {
        w.push(b'e');
    }
}

fn step1c(w: &mut [u8]) {
    let n = w.len();
    if n > 1 && w[n - 1] == b'y' && has_vowel(&w[..n - 1]) {
        w[n - 1] = b'i';
    }
}

fn step2(w: &mut Vec<u8>) {
    rules(
        w,
        0,
        &[
            ("ational", "ate"),
            ("tional", "tion"),
            ("enci", "ence"),
            ("anci", "ance"),
            ("izer", "ize"),
            ("bli", "ble"),
            ("alli", "al"),
            ("entli", "ent"),
            ("eli", "e"),
            ("ousli", "ous"),
            ("ization", "ize"),
            ("ation", "ate"),
            ("ator", "ate"),
            ("alism", "al"),
            ("iveness", "ive"),
            ("fulness", "ful"),
            ("ousness", "ous"),
            ("aliti", "al"),
            ("iviti", "ive"),
            ("biliti", "ble"),
            ("logi", "log"),
        ],
    );
}

fn step3(w: &mut Vec<u8>) {
    rules(
        w,
        0,
        &[
            ("icate", "ic"),
            ("ative", ""),
            ("alize", "al"),
            ("iciti", "ic"),
            ("ical", "ic"),
            ("ful", ""),
            ("ness", ""),
        ],
    );
}

fn step4(w: &mut Vec<u8>) {
    const SUFFIXES: [&str; 19] = [
        "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion", "ou", "ism",
        "ate", "iti", "ous", "ive", "ize",
    ];
    // The longest suffix that ends the word decides.
    let Some(suffix) = SUFFIXES.iter().filter(|s| w.ends_with(s.as_bytes())).max_by_key(|s| s.len()) else {
        return;
    };
    let stem = &w[..w.len() - suffix.len()];
    let ion_ok = *suffix != "ion" || stem.last().is_some_and(|c| matches!(c, b's' | b't'));
    if measure(stem) > 1 && ion_ok {
        w.truncate(stem.len());
    }
}

fn step5(w: &mut Vec<u8>) {
    if let Some(stem) = before(w, "e") {
        let m = measure(stem);
        if m > 1 || (m == 1 && !cvc(stem)) {
            w.pop();
        }
    }
    if w.ends_with(b"ll") && measure(w) > 1 {
        w.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::stem;

    #[test]
    fn stems_as_fts5_does() {
        // (word, FTS5's porter tokenizer's stem)
        for (word, expected) in [
            ("deploying", "deploi"),
            ("deploy", "deploi"),
            ("deployed", "deploi"),
            ("deployment", "deploy"),
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("cats", "cat"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("motoring", "motor"),
            ("hopping", "hop"),
            ("filing", "file"),
            ("happy", "happi"),
            ("relational", "relat"),
            ("generalization", "gener"),
            ("possibly", "possibl"),
            ("technology", "technolog"),
            ("electrical", "electr"),
            ("adjustment", "adjust"),
            ("controlling", "control"),
            ("rolling", "roll"),
            ("as", "as"),
            ("is", "is"),
            ("café", "café"),
            ("servers", "server"),
        ] {
            assert_eq!(stem(word), expected, "{word}");
        }
    }
}

/// The stemmer against FTS5's own: each word of a list of English words
/// in a row of its own of a porter-tokenized table, and the term FTS5 kept
/// for it read back through `fts5vocab`.
#[cfg(test)]
mod against_fts5 {
    use sqlx::{Connection, SqliteConnection};

    #[tokio::test]
    async fn every_word_of_a_list_stems_as_fts5_stems_it() {
        let words: Vec<String> =
            "the quick brown foxes jumped over lazy dogs while deploying generalizations \
            relational conditional rational valenci hesitanci digitizer conformabli radicalli differentli \
            vileli analogousli vietnamization predication operator feudalism decisiveness hopefulness \
            callousness formaliti sensitiviti sensibiliti triplicate formative formalize electriciti \
            electrical hopeful goodness revival allowance inference airliner gyroscopic adjustable \
            defensible irritant replacement adjustment dependent adoption homologou communism activate \
            angulariti homologous effective bowdlerize probate rate cease controll roll generate \
            archaeology biology skies dying lying tying news innings outing canning herring earring \
            proceed exceed succeed sky happy ponies ties caress cats feed agreed plastered bled motoring \
            sing conflated troubled sized hopping tanned falling hissing fizzed failing filing"
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        let mut db = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        for sql in [
            "CREATE VIRTUAL TABLE words USING fts5 (w, tokenize = 'porter ascii')",
            "CREATE VIRTUAL TABLE terms USING fts5vocab (words, 'instance')",
        ] {
            sqlx::query(sql).execute(&mut db).await.unwrap();
        }
        for (i, word) in words.iter().enumerate() {
            sqlx::query("INSERT INTO words (rowid, w) VALUES (?, ?)")
                .bind(i as i64)
                .bind(word)
                .execute(&mut db)
                .await
                .unwrap();
        }
        let stems: Vec<(i64, String)> =
            sqlx::query_as("SELECT doc, term FROM terms ORDER BY doc").fetch_all(&mut db).await.unwrap();
        assert_eq!(stems.len(), words.len());
        let wrong: Vec<String> = stems
            .iter()
            .filter(|(i, fts5)| super::stem(&words[*i as usize]) != *fts5)
            .map(|(i, fts5)| {
                format!("{}: {} (FTS5: {fts5})", words[*i as usize], super::stem(&words[*i as usize]))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
