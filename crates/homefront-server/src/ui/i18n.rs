//! The pages' message catalogue: one TOML file per language
//! (`locales/zh-CN.toml`, `locales/en.toml`), embedded in the binary, and
//! the choice of language: the `lang` cookie set by the switch, else
//! `Accept-Language`, else zh-CN.
//!
//! A flat key → text map with `{name}` placeholders covers what the pages
//! say; Fluent's plural and gender rules are not needed for Chinese and the
//! few English counts here, and TOML is already a dependency.

use homefront_domain::locale::Locale;
use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::{HeaderMap, header};

/// Name of the cookie that remembers the chosen language.
pub const LANG_COOKIE: &str = "lang";

/// A language the pages speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Simplified Chinese, the default.
    Zh,
    /// English.
    En,
}

impl Lang {
    /// BCP 47 tag, as in `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The account language this page language stores as.
    pub fn locale(self) -> Locale {
        match self {
            Lang::Zh => Locale::ZhCn,
            Lang::En => Locale::En,
        }
    }

    /// Parses a tag loosely: `en`, `en-GB` → English; `zh`, `zh-CN` → Chinese.
    pub fn parse(tag: &str) -> Option<Lang> {
        let tag = tag.trim().to_ascii_lowercase();
        if tag == "en" || tag.starts_with("en-") {
            Some(Lang::En)
        } else if tag == "zh" || tag.starts_with("zh-") {
            Some(Lang::Zh)
        } else {
            None
        }
    }

    /// The language of a request: the `lang` cookie, else the
    /// `Accept-Language` entry with the highest weight that we speak, else
    /// Chinese.
    pub fn of(headers: &HeaderMap) -> Lang {
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == LANG_COOKIE)
            .and_then(|(_, v)| Lang::parse(v));
        if let Some(l) = cookie {
            return l;
        }
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(accept_language)
            .unwrap_or(Lang::Zh)
    }
}

/// The best language in an `Accept-Language` value (RFC 9110 §12.5.4).
pub fn accept_language(value: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for entry in value.split(',') {
        let mut parts = entry.split(';');
        let Some(lang) = parts.next().and_then(Lang::parse) else {
            continue;
        };
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l)
}

type Catalogue = HashMap<String, &'static str>;

fn load(text: &str) -> Catalogue {
    fn walk(prefix: &str, table: &toml::Table, out: &mut Catalogue) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                toml::Value::String(s) => {
                    out.insert(key, Box::leak(s.clone().into_boxed_str()));
                }
                other => panic!("catalogue entry {key} is not text: {other}"),
            }
        }
    }
    let table: toml::Table = text.parse().expect("catalogue is valid TOML");
    let mut out = Catalogue::new();
    walk("", &table, &mut out);
    out
}

static ZH: LazyLock<Catalogue> = LazyLock::new(|| load(include_str!("../../locales/zh-CN.toml")));
static EN: LazyLock<Catalogue> = LazyLock::new(|| load(include_str!("../../locales/en.toml")));

/// A translator for one language, handed to every template as `t`.
#[derive(Clone, Copy, Debug)]
pub struct Tr(pub Lang);

impl Tr {
    fn catalogue(self) -> &'static Catalogue {
        match self.0 {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }

    /// The text of `key`, if the catalogue has it.
    pub fn get(&self, key: &str) -> Option<&'static str> {
        self.catalogue().get(key).copied()
    }

    /// The text of `key`; the key itself when missing (a test keeps the
    /// catalogues complete).
    pub fn t(&self, key: &str) -> &'static str {
        self.get(key).unwrap_or_else(|| {
            tracing::warn!(key, "missing catalogue entry");
            Box::leak(key.to_string().into_boxed_str())
        })
    }

    /// The text of `key` with `{name}` placeholders filled.
    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut s = self.t(key).to_string();
        for (name, value) in args {
            s = s.replace(&format!("{{{name}}}"), value);
        }
        s
    }

    /// The text of `prefix.name`, e.g. `state.assigned`.
    pub fn k(&self, prefix: &str, name: impl std::fmt::Display) -> &'static str {
        self.t(&format!("{prefix}.{name}"))
    }

    /// The text of `key` with its one placeholder `{name}` filled.
    pub fn f1(&self, key: &str, name: &str, value: impl std::fmt::Display) -> String {
        self.f(key, &[(name, &value.to_string())])
    }

    /// A division's name in this language: on English pages the shipped
    /// list's English name (`玄武区` → `Xuanwu District`); names the list
    /// does not hold (teams, employers) stay as they were entered.
    pub fn place(&self, zh: &str) -> String {
        match self.0 {
            Lang::En => homefront_store::divisions::english_name(zh)
                .unwrap_or(zh)
                .to_string(),
            Lang::Zh => zh.to_string(),
        }
    }

    /// `<html lang>` value.
    pub fn lang(&self) -> &'static str {
        self.0.tag()
    }

    /// Whether this is English.
    pub fn is_en(&self) -> bool {
        self.0 == Lang::En
    }

    /// Picks the Chinese or English variant of a bilingual record field.
    pub fn pick<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        match self.0 {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

/// Every key both catalogues define (for tests).
pub fn keys(lang: Lang) -> Vec<String> {
    let mut k: Vec<String> = Tr(lang).catalogue().keys().cloned().collect();
    k.sort();
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_have_the_same_keys_and_no_empty_text() {
        assert_eq!(keys(Lang::Zh), keys(Lang::En));
        for l in [Lang::Zh, Lang::En] {
            for k in keys(l) {
                assert!(!Tr(l).t(&k).trim().is_empty(), "{k} is empty in {l:?}");
            }
        }
    }

    #[test]
    fn every_key_used_by_a_template_or_page_exists() {
        let dirs = [
            concat!(env!("CARGO_MANIFEST_DIR"), "/templates"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/src/ui"),
        ];
        let zh = keys(Lang::Zh);
        for dir in dirs {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                for call in [".t(\"", ".f(\"", ".f1(\"", ".get(\""] {
                    for piece in text.split(call).skip(1) {
                        let key = piece.split('"').next().unwrap();
                        if key.contains('{') || key.is_empty() || key.ends_with('.') {
                            continue;
                        }
                        assert!(
                            zh.iter().any(|k| k == key),
                            "{} uses {key}, missing from the catalogue",
                            path.display()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn templates_hold_no_chinese_text() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{} has Chinese text: move it to the catalogue",
                path.display()
            );
        }
    }

    #[test]
    fn accept_language_takes_the_best_weight_we_speak() {
        assert_eq!(accept_language("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(accept_language("fr, en;q=0.5, zh;q=0.8"), Some(Lang::Zh));
        assert_eq!(accept_language("fr"), None);
        assert_eq!(accept_language("en;q=0"), None);
    }

    #[test]
    fn placeholders_are_filled() {
        assert!(Tr(Lang::En).f("order.title", &[("id", "7")]).contains('7'));
    }
}
